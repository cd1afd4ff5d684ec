// /proc/self/statm: any bytes must parse or fail cleanly. A success must
// carry the first two fields of the first line.
#include "fuzz_check.h"
#include "proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);

  auto r = aq::parse_statm(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;

  auto f = fuzz::tokens(fuzz::lines(text).at(0));
  FUZZ_CHECK(f.size() >= 2);
  FUZZ_CHECK(fuzz::spells(f[0], r.value.size_pages));
  FUZZ_CHECK(fuzz::spells(f[1], r.value.resident_pages));
  return 0;
}
