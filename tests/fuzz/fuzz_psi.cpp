// PSI files (/proc/pressure/*, <cgroup>/*.pressure): any bytes must parse or
// fail cleanly. A success must have one "some" line and at most one "full",
// averages within [0, 100], and the totals the lines spell.
#include "fuzz_check.h"
#include "proc_parse.h"

namespace {

void check_line(const aq::PsiLine& p, std::string_view line) {
  for (double avg : {p.avg10, p.avg60, p.avg300})
    FUZZ_CHECK(avg >= 0.0 && avg <= 100.0);
  bool total = false;
  for (std::string_view field : fuzz::tokens(line))
    if (field.substr(0, 6) == "total=")
      total = fuzz::spells(field.substr(6), p.total_us);
  FUZZ_CHECK(total);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);
  auto r = aq::parse_psi(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;
  int some = 0, full = 0;
  for (std::string_view line : fuzz::lines(text)) {
    auto f = fuzz::tokens(line);
    if (f.empty())
      continue;
    FUZZ_CHECK(f[0] == "some" || f[0] == "full");
    if (f[0] == "some") {
      ++some;
      check_line(r.value.some, line);
    } else {
      ++full;
      FUZZ_CHECK(r.value.full.has_value());
      check_line(*r.value.full, line);
    }
  }
  FUZZ_CHECK(some == 1 && full <= 1);
  FUZZ_CHECK(r.value.full.has_value() == (full == 1));
  return 0;
}
