#include <string.h>
#include "out.h"
#include "test.h"

static int fixed_is(double v, int decimals, const char *want)
{
    char buf[64];
    size_t n = fmt_fixed(buf, sizeof buf, v, decimals);
    return n == strlen(want) && strcmp(buf, want) == 0;
}

void test_out(void)
{
    char buf[32];
    buf[fmt_u64(buf, 18446744073709551615ULL)] = 0;
    CHECK(strcmp(buf, "18446744073709551615") == 0);
    buf[fmt_u64(buf, 0)] = 0;
    CHECK(strcmp(buf, "0") == 0);

    CHECK(fixed_is(0.0, 3, "0.000"));
    CHECK(fixed_is(1.0005, 3, "1.001") || fixed_is(1.0005, 3, "1.000"));
    CHECK(fixed_is(123.4567, 3, "123.457"));
    CHECK(fixed_is(-2.5, 1, "-2.5"));
    CHECK(fixed_is(-0.0001, 3, "0.000"));
    CHECK(fixed_is(0.9, 3, "0.900"));
    CHECK(fixed_is(42.0, 0, "42"));
    double zero = 0.0;
    CHECK(fixed_is(1.0 / zero, 3, "9000000000000000.000"));   /* inf is clamped, never "inf" */
    CHECK(fixed_is(zero / zero, 3, "0.000"));                 /* nan prints as 0 */
}
