# The project's own tests on Windows (PowerShell), the equivalent of scripts/test.sh without
# the guest's C tests (they need gcc and make: run them in WSL). Extra arguments go to pytest.
#   powershell -ExecutionPolicy Bypass -File scripts\test.ps1 -k "boards or image"
# Tests that need Linux-only tools (gnu-efi, network namespaces, ptys, labgrid) skip with the
# reason; the rest run, including the QEMU boots of the reference guest when it is built.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")

if (-not (Test-Path ".venv\Scripts\python.exe")) {
    Write-Host "setup: creating .venv"
    if (Get-Command py -ErrorAction SilentlyContinue) { py -3 -m venv .venv }
    else { python -m venv .venv }
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
$python = ".venv\Scripts\python.exe"
& $python -m pip install -q -e ".[dev,allure]"
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& $python -m pytest tests -p no:cacheprovider @args
exit $LASTEXITCODE
