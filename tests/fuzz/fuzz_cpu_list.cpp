// A kernel CPU list ("0-3,5"): any bytes must parse or fail cleanly. A
// success must be sorted, without repeats, within kMaxCpuId, and hold
// exactly the ids of the ranges the text names.
#include <algorithm>

#include "fuzz_check.h"
#include "proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);
  auto r = aq::parse_cpu_list(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;
  const std::vector<unsigned>& cpus = r.value;
  FUZZ_CHECK(!cpus.empty());
  FUZZ_CHECK(cpus.size() <= aq::kMaxCpuId + 1u);
  for (size_t i = 1; i < cpus.size(); ++i)
    FUZZ_CHECK(cpus[i - 1] < cpus[i]);
  FUZZ_CHECK(cpus.back() <= aq::kMaxCpuId);

  // The ranges, read apart from the parser (trailing space is allowed),
  // merged; the list must be exactly their ids.
  while (!text.empty() && fuzz::is_space(text.back()))
    text.remove_suffix(1);
  std::vector<std::pair<unsigned, unsigned>> ranges;
  size_t pos = 0;
  for (;;) {
    const size_t comma = text.find(',', pos);
    const std::string_view part =
        text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    const size_t dash = part.find('-');
    const std::string_view a = part.substr(0, dash);
    const std::string_view b = dash == std::string_view::npos ? a : part.substr(dash + 1);
    FUZZ_CHECK(fuzz::all_digits(a) && fuzz::all_digits(b));
    FUZZ_CHECK(fuzz::canonical_digits(a).size() <= 5 && fuzz::canonical_digits(b).size() <= 5);
    const unsigned lo = static_cast<unsigned>(std::stoul(std::string(a)));
    const unsigned hi = static_cast<unsigned>(std::stoul(std::string(b)));
    FUZZ_CHECK(lo <= hi && hi <= aq::kMaxCpuId);
    ranges.emplace_back(lo, hi);
    if (comma == std::string_view::npos)
      break;
    pos = comma + 1;
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<unsigned, unsigned>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  size_t count = 0;
  for (const auto& [lo, hi] : merged) {
    count += hi - lo + 1;
    FUZZ_CHECK(std::binary_search(cpus.begin(), cpus.end(), lo));
    FUZZ_CHECK(std::binary_search(cpus.begin(), cpus.end(), hi));
  }
  // Every id inside a range, and as many as the ranges hold: the same set.
  for (unsigned id : cpus) {
    auto it =
        std::upper_bound(merged.begin(), merged.end(), std::make_pair(id, aq::kMaxCpuId + 1u));
    FUZZ_CHECK(it != merged.begin() && id <= std::prev(it)->second);
  }
  FUZZ_CHECK(count == cpus.size());
  return 0;
}
