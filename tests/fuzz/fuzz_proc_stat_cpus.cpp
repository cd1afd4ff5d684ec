// The per-CPU lines of /proc/stat: any bytes must parse or fail cleanly. A
// success must list every "cpuN" line once, in file order, with the
// counters the line spells and sums that do not wrap.
#include <algorithm>

#include "fuzz_check.h"
#include "proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);
  auto r = aq::parse_proc_stat_cpus(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;
  FUZZ_CHECK(!r.value.empty());

  // The lines named "cpu" and digits, read apart from the parser.
  size_t next = 0;
  for (std::string_view line : fuzz::lines(text)) {
    auto f = fuzz::tokens(line);
    if (f.empty() || f[0].size() <= 3 || f[0].substr(0, 3) != "cpu")
      continue;
    std::string_view digits = f[0].substr(3);
    if (!fuzz::all_digits(digits) || fuzz::canonical_digits(digits).size() > 5)
      continue;
    const uint64_t id = std::stoull(std::string(digits));
    if (id > aq::kMaxCpuId)
      continue;
    FUZZ_CHECK(next < r.value.size());
    const aq::CpuLine& c = r.value[next++];
    FUZZ_CHECK(c.id == id);
    const uint64_t counters[] = {c.times.user,   c.times.nice,      c.times.system,  c.times.idle,
                                 c.times.iowait, c.times.irq,       c.times.softirq, c.times.steal,
                                 c.times.guest,  c.times.guest_nice};
    FUZZ_CHECK(f.size() >= 5);
    for (size_t i = 0; i < 10; ++i)
      FUZZ_CHECK(i + 1 < f.size() ? fuzz::spells(f[i + 1], counters[i]) : counters[i] == 0);
    for (size_t i = 0; i < 8; ++i)
      FUZZ_CHECK(counters[i] <= c.times.total());
    FUZZ_CHECK(c.times.busy() <= c.times.total());
  }
  FUZZ_CHECK(next == r.value.size());
  for (size_t i = 0; i < r.value.size(); ++i)
    for (size_t j = i + 1; j < r.value.size(); ++j)
      FUZZ_CHECK(r.value[i].id != r.value[j].id);
  return 0;
}
