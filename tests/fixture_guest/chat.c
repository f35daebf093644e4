/*
 * chat.c - the fixture guest's "chat" mode: an interactive build shaped like the seeds'
 * llama2 UEFI REPL, so the plugin's tests meet a build that never says "done".
 *
 *   llm-baremetal REPL v0.9.2 (build fx-20260105) firmware=EDK II
 *   Model: stories-fixture.bin dim=288 layers=6 vocab=512
 *   SGEMM kernel: AVX2+FMA (sse2=1 avx=1 avx2=1 fma=1)      (SSE2 without AVX2+FMA)
 *   Ready. steps=24 seed=42. Type /quit to exit.
 *
 *   You: <typed text is echoed, ended by CR>
 *   AI: <words of the answer, eight per line...>
 *   [llmk][budget] prefill=<prompt words> decode=<steps> cap=256
 *   <...more words>
 *   [stats] tokens=<steps> time_s=<s> tok/s=<r>   (time from GetTime: 1 s resolution,
 *                                                  so tok/s is "inf" for a quick answer)
 *
 * The prompt "You: " has no newline after it. An empty line prompts again; "/quit"
 * prints "Bye." and powers off. The answer is a deterministic function of the prompt and
 * the seed (no model, no token ids). chat.cfg (key=value lines) sets steps and seed.
 */
#include "fixture.h"

#define CFG_MAX 256
#define INPUT_MAX 256
#define PER_LINE 8

static const CHAR16 *WORDS[] = {
    L"the", L"little", L"dog", L"ran", L"to", L"a", L"big", L"tree", L"and", L"saw",
    L"bird", L"that", L"was", L"happy", L"she", L"said", L"hello", L"sun", L"in", L"sky",
    L"they", L"played", L"all", L"day", L"with", L"ball", L"red", L"park", L"girl", L"smiled",
};
#define NWORDS (sizeof(WORDS) / sizeof(WORDS[0]))

static UINTN cfg_value(const CHAR8 *cfg, const char *key, UINTN fallback)
{
    const CHAR8 *p = cfg;
    while (*p) {
        const CHAR8 *line = p;
        const char *k = key;
        while (*k && *line == (CHAR8)*k) {
            line++;
            k++;
        }
        if (*k == 0 && *line == '=') {
            UINTN v = 0;
            int any = 0;
            for (line++; *line >= '0' && *line <= '9'; line++) {
                v = v * 10 + (UINTN)(*line - '0');
                any = 1;
            }
            return any ? v : fallback;
        }
        while (*p && *p != '\n')
            p++;
        if (*p)
            p++;
    }
    return fallback;
}

static void cpuid(UINT32 leaf, UINT32 sub, UINT32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static void print_kernel(void)
{
    UINT32 r[4];
    int sse2, avx, avx2 = 0, fma;
    cpuid(0, 0, r);
    UINT32 max_leaf = r[0];
    cpuid(1, 0, r);
    sse2 = (r[3] >> 26) & 1;
    avx = (r[2] >> 28) & 1;
    fma = (r[2] >> 12) & 1;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        avx2 = (r[1] >> 5) & 1;
    }
    Print(L"SGEMM kernel: %s (sse2=%d avx=%d avx2=%d fma=%d)\n",
          avx2 && fma ? L"AVX2+FMA" : L"SSE2", sse2, avx, avx2, fma);
}

static UINTN read_line(CHAR16 *line)
{
    UINTN len = 0, index;
    EFI_INPUT_KEY key;
    for (;;) {
        uefi_call_wrapper(BS->WaitForEvent, 3, 1, &ST->ConIn->WaitForKey, &index);
        if (EFI_ERROR(uefi_call_wrapper(ST->ConIn->ReadKeyStroke, 2, ST->ConIn, &key)))
            continue;
        if (key.UnicodeChar == L'\r' || key.UnicodeChar == L'\n') {
            line[len] = 0;
            Print(L"\n");
            return len;
        }
        if (key.UnicodeChar >= 0x20 && len < INPUT_MAX - 1) {
            line[len++] = key.UnicodeChar;
            Print(L"%c", key.UnicodeChar); /* echo, as a terminal REPL does */
        }
    }
}

static UINTN seconds_of_day(void)
{
    EFI_TIME t;
    if (EFI_ERROR(uefi_call_wrapper(RT->GetTime, 2, &t, NULL)))
        return 0;
    return (UINTN)t.Hour * 3600 + (UINTN)t.Minute * 60 + t.Second;
}

static void answer(const CHAR16 *prompt, UINTN steps, UINTN seed)
{
    UINT32 state = (UINT32)seed * 2654435761u + 1;
    UINTN prompt_words = 1, start = seconds_of_day();
    for (const CHAR16 *c = prompt; *c; c++) {
        state = state * 31 + *c;
        if (*c == L' ')
            prompt_words++;
    }
    Print(L"AI: ");
    for (UINTN i = 0; i < steps; i++) {
        state = state * 1103515245u + 12345u;
        if (i > 0 && i % PER_LINE == 0) {
            Print(L"\n");
            if (i == PER_LINE)
                Print(L"[llmk][budget] prefill=%d decode=%d cap=256\n", prompt_words, steps);
        } else if (i > 0) {
            Print(L" ");
        }
        Print(L"%s", WORDS[(state >> 16) % NWORDS]);
    }
    Print(L"\n");
    UINTN secs = seconds_of_day() - start;
    if (secs == 0)
        Print(L"[stats] tokens=%d time_s=0 tok/s=inf\n", steps);
    else
        Print(L"[stats] tokens=%d time_s=%d tok/s=%d.%02d\n", steps, secs, steps / secs,
              (steps * 100 / secs) % 100);
}

void mode_chat(EFI_HANDLE image)
{
    CHAR8 cfg[CFG_MAX];
    CHAR16 line[INPUT_MAX];
    read_root_file(image, L"chat.cfg", cfg, sizeof(cfg));
    UINTN steps = cfg_value(cfg, "steps", 24), seed = cfg_value(cfg, "seed", 42);

    Print(L"llm-baremetal REPL v0.9.2 (build fx-20260105) firmware=%s\n", ST->FirmwareVendor);
    Print(L"Model: stories-fixture.bin dim=288 layers=6 vocab=512\n");
    print_kernel();
    Print(L"Ready. steps=%d seed=%d. Type /quit to exit.\n", steps, seed);
    for (;;) {
        Print(L"\nYou: ");
        if (read_line(line) == 0)
            continue;
        if (StrCmp(line, L"/quit") == 0) {
            Print(L"Bye.\n");
            shutdown();
        }
        answer(line, steps, seed);
    }
}
