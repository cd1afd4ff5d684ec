// /proc/stat: any bytes must parse or fail cleanly. A success must carry
// the counters of the first line named "cpu", and their sum must not wrap.
#include "fuzz_check.h"
#include "proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);

  auto r = aq::parse_proc_stat(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;

  const aq::CpuTimes& t = r.value;
  const uint64_t counters[] = {t.user, t.nice,    t.system, t.idle,  t.iowait,
                               t.irq,  t.softirq, t.steal,  t.guest, t.guest_nice};
  // total() sums the first 8; each must fit in it, or the sum wrapped.
  for (size_t i = 0; i < 8; ++i)
    FUZZ_CHECK(counters[i] <= t.total());
  FUZZ_CHECK(t.busy() <= t.total());

  std::vector<std::string_view> fields;
  for (std::string_view line : fuzz::lines(text)) {
    fields = fuzz::tokens(line);
    if (!fields.empty() && fields[0] == "cpu")
      break;
    fields.clear();
  }
  FUZZ_CHECK(fields.size() >= 5);
  // Counters the line does not have (older kernels) stay 0.
  for (size_t i = 0; i < 10; ++i)
    FUZZ_CHECK(i + 1 < fields.size() ? fuzz::spells(fields[i + 1], counters[i]) : counters[i] == 0);
  return 0;
}
