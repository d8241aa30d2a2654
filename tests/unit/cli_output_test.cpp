// What the CLI prints of the server's data: nothing a terminal would act on.
#include <catch2/catch.hpp>

#include "server/cli/output.h"

using tripline::cli::printable;

TEST_CASE("cli output: controls, bidi overrides and non-UTF-8 bytes are shown as '?'") {
  CHECK(printable("web-up") == "web-up");
  CHECK(printable("caf\xc3\xa9 \xe2\x9c\x93") == "caf\xc3\xa9 \xe2\x9c\x93");  // é ✓ kept
  CHECK(printable("a\x1b[31mred\x07") == "a?[31mred?");                        // ESC, BEL
  CHECK(printable("x\x7fy") == "x?y");                                         // DEL
  CHECK(printable("\xc2\x9b"
                  "31m") == "?31m");  // U+009B, CSI to a terminal
  CHECK(printable("\x9b"
                  "31m") == "?31m");                              // a lone C1 byte
  CHECK(printable("evil\xe2\x80\xaetxt.exe") == "evil?txt.exe");  // U+202E right-to-left override
  CHECK(printable("\xe2\x81\xa6x\xe2\x81\xa9") == "?x?");         // U+2066, U+2069 isolates
  CHECK(printable("cut\xe2\x80") == "cut??");                     // a truncated sequence
}
