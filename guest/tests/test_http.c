#include <string.h>
#include "config.h"
#include "download.h"
#include "http.h"
#include "sha256.h"
#include "test.h"

static int head(const char *text, struct http_response *r)
{
    const char *why;
    return http_parse_head(text, strlen(text), r, &why);
}

static void test_url(void)
{
    struct http_url u;
    const char *why;
    CHECK(http_parse_url("http://10.0.2.2:8080/models/m.bin", &u, &why) == 0);
    CHECK(strcmp(u.host, "10.0.2.2") == 0 && u.port == 8080);
    CHECK(u.ip[0] == 10 && u.ip[1] == 0 && u.ip[2] == 2 && u.ip[3] == 2);
    CHECK(strcmp(u.path, "/models/m.bin") == 0);
    CHECK(http_parse_url("http://127.0.0.1", &u, &why) == 0);
    CHECK(u.port == 80 && strcmp(u.path, "/") == 0);
    const char *bad[] = {
        "https://10.0.2.2/m", "http://host/m", "http://10.0.2/m", "http://10.0.2.256/m",
        "http://10.0.2.2:0/m", "http://10.0.2.2:65536/m", "http://10.0.2.2:/m",
        "http://10.0.2.2x/m", "http://10.0.2.2/a b", "ftp://10.0.2.2/m",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(http_parse_url(bad[i], &u, &why) == -1);
}

static void test_request(void)
{
    struct http_url u;
    const char *why;
    char buf[512];
    CHECK(http_parse_url("http://10.0.2.2:8080/m.bin", &u, &why) == 0);
    size_t n = http_build_request(&u, buf, sizeof buf);
    CHECK(n == strlen(buf));
    CHECK(strncmp(buf, "GET /m.bin HTTP/1.1\r\nHost: 10.0.2.2:8080\r\n", 42) == 0);
    CHECK(strstr(buf, "Connection: close\r\n\r\n") != NULL);
    CHECK(http_parse_url("http://10.0.2.2/m.bin", &u, &why) == 0);
    CHECK(http_build_request(&u, buf, sizeof buf) > 0 && strstr(buf, "Host: 10.0.2.2\r\n"));
    CHECK(http_build_request(&u, buf, 20) == 0);
}

static void test_head(void)
{
    struct http_response r;
    const char *ok = "HTTP/1.0 200 OK\r\nServer: x\r\ncontent-length:  1234 \r\n\r\nBODY";
    CHECK(head(ok, &r) == 1);
    CHECK(r.status == 200 && r.has_length && r.content_length == 1234 && !r.chunked);
    CHECK(r.head_len == strlen(ok) - 4);
    CHECK(head("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n", &r) == 1);
    CHECK(r.status == 404);
    CHECK(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &r) == 1);
    CHECK(r.chunked && !r.has_length);
    CHECK(head("HTTP/1.1 200 OK\n\n", &r) == 1 && r.status == 200 && !r.has_length);
    CHECK(head("HTTP/1.1 204\r\n\r\n", &r) == 1 && r.status == 204);
    /* Incomplete heads ask for more. */
    CHECK(head("HTTP/1.1 200 OK\r\nContent-Le", &r) == 0);
    CHECK(head("HTT", &r) == 0);
    /* Not HTTP, or malformed. */
    CHECK(head("SSH-2.0-OpenSSH\r\n\r\n", &r) == -1);
    CHECK(head("HTTP/1.1 2x0 OK\r\n\r\n", &r) == -1);
    CHECK(head("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", &r) == -1);
    CHECK(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r) == -1);
    CHECK(head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", &r) == -1);
}

static void test_sha256_stream(void)
{
    static unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    unsigned char one[32], parts[32];
    sha256(data, sizeof data, one);
    /* Every split point and piece size gives the one-shot digest. */
    size_t sizes[] = {1, 3, 63, 64, 65, 127, 500};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        for (size_t i = 0; i < sizeof data; i += sizes[s]) {
            size_t n = sizeof data - i < sizes[s] ? sizeof data - i : sizes[s];
            sha256_update(&ctx, data + i, n);
        }
        sha256_final(&ctx, parts);
        CHECK(memcmp(one, parts, 32) == 0);
    }
}

static void test_sidecar(void)
{
    char hex[65];
    const char *good =
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855  model.bin\n";
    CHECK(download_parse_sha256_file((const unsigned char *)good, strlen(good), hex) == 0);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    const char *bare = "\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    CHECK(download_parse_sha256_file((const unsigned char *)bare, strlen(bare), hex) == 0);
    const char *bad[] = {"", "e3b0c442", "<html>not found</html>",
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(download_parse_sha256_file((const unsigned char *)bad[i], strlen(bad[i]), hex) ==
              -1);
}

static void test_net_config(void)
{
    struct config cfg;
    struct cfg_error err;
    const char *text = "model_url=http://10.0.2.2:8000/model.bin\n"
                       "model_sha256="
                       "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"
                       "net_timeout_ms=250\n";
    config_defaults(&cfg);
    CHECK(cfg.net_timeout_ms == 5000 && cfg.model_url[0] == 0 && cfg.tokenizer_url[0] == 0);
    CHECK(config_parse(&cfg, text, strlen(text), &err) == 0);
    CHECK(strcmp(cfg.model_url, "http://10.0.2.2:8000/model.bin") == 0);
    CHECK(strcmp(cfg.model_sha256,
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    CHECK(cfg.net_timeout_ms == 250);
    CHECK(config_parse(&cfg, "model_url=", 10, &err) == 0 && cfg.model_url[0] == 0);
    const char *bad[] = {"model_url=ftp://x/m", "tokenizer_url=10.0.2.2/t", "model_sha256=abc",
                         "net_timeout_ms=0", "net_timeout_ms=600001",
                         "tokenizer_sha256="
                         "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(config_parse(&cfg, bad[i], strlen(bad[i]), &err) == -1);
        CHECK(strcmp(err.reason, "bad_value") == 0);
    }
}

void test_http(void)
{
    test_url();
    test_request();
    test_head();
    test_sha256_stream();
    test_sidecar();
    test_net_config();
}
