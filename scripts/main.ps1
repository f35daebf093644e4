# The main job on Windows (PowerShell), the equivalent of scripts/main.sh: a virtual
# environment in .venv with the plugin, the reference guest booted under QEMU, the suites,
# results under reports\. Extra arguments go to pytest, e.g.
#   powershell -ExecutionPolicy Bypass -File scripts\main.ps1 --target=qemu-whpx
# Needs Python 3.10+ and QEMU (winget install SoftwareFreedomConservancy.QEMU). No bash,
# make or mtools: disk images are composed in Python. The reference guest cannot be built
# on Windows (gnu-efi): build it once in WSL (wsl make -C guest), or install the wheel,
# which carries it prebuilt (pip install pytest-baremetal; pytest-baremetal demo).
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

if (-not (Test-Path "guest\build\BOOTX64.EFI")) {
    Write-Error ("guest\build\BOOTX64.EFI is missing: build it in WSL (wsl make -C guest) " +
                 "or use the wheel, which carries it (pytest-baremetal demo)")
    exit 2
}
& $python -m pytest_baremetal doctor --quick

$pytestArgs = $args
if ($pytestArgs.Count -eq 0) { $pytestArgs = @("--target=qemu-tcg") }
& $python -m pytest @pytestArgs --junitxml=reports/junit.xml `
    --alluredir=reports/allure-results --clean-alluredir
$status = $LASTEXITCODE

if (Test-Path "node_modules\.bin\allure.cmd") {
    $env:ALLURE_RESULTS = "reports/allure-results"
    $env:ALLURE_REPORT = "reports/allure-report"
    $env:ALLURE_HISTORY = "reports/allure-history.jsonl"
    & node_modules\.bin\allure.cmd generate --config scripts/allurerc.mjs `
        --output reports/allure-report reports/allure-results | Out-Null
    if ($LASTEXITCODE -ne 0 -and $status -eq 0) { $status = 1 }
    Write-Host "report: reports\allure-report\index.html"
} else {
    Write-Host "report: skipped (npm ci installs the Allure renderer; needs Node)"
}
Write-Host "main: console logs in reports\logs\, JUnit XML in reports\junit.xml"
exit $status
