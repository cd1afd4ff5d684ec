// cgroup files: /proc/self/cgroup, cpu.max, cpu.cfs_quota_us, one-value
// files, limits and flat keyed files. Any bytes go to every parser, and each
// must parse or fail cleanly; a success must carry what the text spells.
#include <type_traits>

#include "fuzz_check.h"
#include "proc_parse.h"

namespace {

void check_membership(std::string_view text) {
  auto r = aq::parse_proc_cgroup(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return;
  size_t lines = 0;
  for (std::string_view line : fuzz::lines(text))
    if (!fuzz::tokens(line).empty())
      ++lines;
  FUZZ_CHECK(r.value.entries.size() == lines);
  for (const aq::CgroupEntry& e : r.value.entries) {
    FUZZ_CHECK(!e.path.empty() && e.path[0] == '/');
    FUZZ_CHECK(e.path.find('\n') == std::string::npos);
    for (const std::string& c : e.controllers)
      FUZZ_CHECK(!c.empty() && c.find(',') == std::string::npos);
  }
  if (const aq::CgroupEntry* v2 = r.value.v2())
    FUZZ_CHECK(v2->hierarchy == 0 && v2->controllers.empty());
}

void check_cpu_max(std::string_view text) {
  auto r = aq::parse_cpu_max(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return;
  auto f = fuzz::tokens(text);
  FUZZ_CHECK(f.size() == 2);
  FUZZ_CHECK((f[0] == "max") == !r.value.quota_us.has_value());
  if (r.value.quota_us)
    FUZZ_CHECK(*r.value.quota_us > 0 && fuzz::spells(f[0], *r.value.quota_us));
  FUZZ_CHECK(r.value.period_us > 0 && fuzz::spells(f[1], r.value.period_us));
}

// One token: "-1"/"max" (none, when `none` names it) or a number.
template <class Parse>
void check_single(Parse parse, std::string_view text, std::string_view none, bool positive) {
  auto r = parse(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return;
  auto f = fuzz::tokens(text);
  FUZZ_CHECK(f.size() == 1);
  if constexpr (std::is_same_v<decltype(r.value), uint64_t>) {
    FUZZ_CHECK(fuzz::spells(f[0], r.value));
  } else {
    FUZZ_CHECK((f[0] == none) == !r.value.has_value());
    if (r.value)
      FUZZ_CHECK(fuzz::spells(f[0], *r.value) && (!positive || *r.value > 0));
  }
}

void check_flat_keyed(std::string_view text) {
  auto r = aq::parse_flat_keyed(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return;
  size_t i = 0;
  for (std::string_view line : fuzz::lines(text)) {
    auto f = fuzz::tokens(line);
    if (f.empty())
      continue;
    FUZZ_CHECK(f.size() == 2 && i < r.value.entries.size());
    FUZZ_CHECK(r.value.entries[i].first == f[0]);
    FUZZ_CHECK(fuzz::spells(f[1], r.value.entries[i].second));
    FUZZ_CHECK(r.value.get(f[0]) == r.value.entries[i].second);
    ++i;
  }
  FUZZ_CHECK(i == r.value.entries.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);
  check_membership(text);
  check_cpu_max(text);
  check_single(aq::parse_cfs_quota, text, "-1", true);
  check_single(aq::parse_cgroup_value, text, "", false);
  check_single(aq::parse_cgroup_limit, text, "max", false);
  check_flat_keyed(text);
  return 0;
}
