#include "proc_parse.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <vector>

namespace aq {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i]))
      ++i;
    size_t start = i;
    while (i < s.size() && !is_space(s[i]))
      ++i;
    if (i > start)
      out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string_view first_line(std::string_view text) {
  size_t nl = text.find('\n');
  return nl == std::string_view::npos ? text : text.substr(0, nl);
}

}  // namespace

Parsed<uint64_t> parse_u64(std::string_view token) {
  if (token.empty())
    return Parsed<uint64_t>::failure("empty number");
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec == std::errc::result_out_of_range)
    return Parsed<uint64_t>::failure("number overflows 64 bits: '" + std::string(token) + "'");
  if (ec != std::errc() || ptr != token.data() + token.size())
    return Parsed<uint64_t>::failure("not a number: '" + std::string(token) + "'");
  return Parsed<uint64_t>::success(v);
}

namespace {

// The counters after a "cpu" or "cpuN" name; `name` prefixes the errors.
Parsed<CpuTimes> parse_cpu_counters(const std::vector<std::string_view>& fields,
                                    const std::string& name) {
  using R = Parsed<CpuTimes>;
  // user nice system idle are present on every kernel; the rest came later.
  if (fields.size() < 5)
    return R::failure(name + " line has fewer than 4 counters");
  CpuTimes t;
  uint64_t* slots[] = {&t.user, &t.nice,    &t.system, &t.idle,  &t.iowait,
                       &t.irq,  &t.softirq, &t.steal,  &t.guest, &t.guest_nice};
  for (size_t i = 1; i < fields.size() && i <= 10; ++i) {
    auto n = parse_u64(fields[i]);
    if (!n.ok)
      return R::failure(name + " counter " + std::to_string(i) + ": " + n.error);
    *slots[i - 1] = n.value;
  }
  // A sum that wraps would make every delta nonsense.
  uint64_t sum = 0;
  for (int i = 0; i < 8; ++i) {
    if (sum + *slots[i] < sum)
      return R::failure(name + " counters overflow their sum");
    sum += *slots[i];
  }
  return R::success(t);
}

// "cpu12" -> 12; anything else (including "cpu") is not a per-CPU name.
std::optional<unsigned> per_cpu_id(std::string_view name) {
  if (name.size() <= 3 || name.substr(0, 3) != "cpu")
    return std::nullopt;
  auto n = parse_u64(name.substr(3));
  if (!n.ok || n.value > kMaxCpuId)
    return std::nullopt;
  return static_cast<unsigned>(n.value);
}

}  // namespace

Parsed<CpuTimes> parse_proc_stat(std::string_view text) {
  // The aggregate line comes first and is named exactly "cpu".
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    auto fields = split_ws(line);
    if (fields.empty() || fields[0] != "cpu")
      continue;
    return parse_cpu_counters(fields, "cpu");
  }
  return Parsed<CpuTimes>::failure("no 'cpu' line");
}

Parsed<std::vector<CpuLine>> parse_proc_stat_cpus(std::string_view text) {
  using R = Parsed<std::vector<CpuLine>>;
  std::vector<CpuLine> out;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    auto fields = split_ws(line);
    if (fields.empty())
      continue;
    const auto id = per_cpu_id(fields[0]);
    if (!id)
      continue;
    for (const CpuLine& seen : out)
      if (seen.id == *id)
        return R::failure("two lines for cpu" + std::to_string(*id));
    auto t = parse_cpu_counters(fields, "cpu" + std::to_string(*id));
    if (!t.ok)
      return R::failure(t.error);
    out.push_back({*id, t.value});
  }
  if (out.empty())
    return R::failure("no 'cpuN' lines");
  return R::success(std::move(out));
}

Parsed<MemInfo> parse_meminfo(std::string_view text) {
  using R = Parsed<MemInfo>;
  bool have_total = false, have_available = false, have_free = false;
  uint64_t total = 0, available = 0, free = 0, buffers = 0, cached = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    std::string_view key = line.substr(0, colon);
    uint64_t* dest = nullptr;
    bool* seen = nullptr;
    if (key == "MemTotal") {
      dest = &total;
      seen = &have_total;
    } else if (key == "MemAvailable") {
      dest = &available;
      seen = &have_available;
    } else if (key == "MemFree") {
      dest = &free;
      seen = &have_free;
    } else if (key == "Buffers")
      dest = &buffers;
    else if (key == "Cached")
      dest = &cached;
    if (!dest)
      continue;
    auto fields = split_ws(line.substr(colon + 1));
    if (fields.empty())
      return R::failure(std::string(key) + " has no value");
    if (fields.size() > 1 && fields[1] != "kB")
      return R::failure(std::string(key) + " has unit '" + std::string(fields[1]) +
                        "', expected kB");
    auto n = parse_u64(fields[0]);
    if (!n.ok)
      return R::failure(std::string(key) + ": " + n.error);
    *dest = n.value;
    if (seen)
      *seen = true;
  }
  if (!have_total)
    return R::failure("MemTotal missing");
  if (total == 0)
    return R::failure("MemTotal is 0");
  MemInfo m;
  m.total_kb = total;
  if (have_available) {
    m.available_kb = available;
  } else if (have_free) {
    // Each value fits in 64 bits but their sum may not: wrapped, it is wrong.
    if (buffers > UINT64_MAX - free || cached > UINT64_MAX - free - buffers)
      return R::failure("MemFree + Buffers + Cached overflows");
    m.available_kb = free + buffers + cached;
    m.available_estimated = true;
  } else {
    return R::failure("neither MemAvailable nor MemFree present");
  }
  if (m.available_kb > m.total_kb)
    m.available_kb = m.total_kb;
  return R::success(m);
}

Parsed<PidStat> parse_pid_stat(std::string_view text) {
  using R = Parsed<PidStat>;
  // The command name may hold spaces and ')', so it ends at the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return R::failure("no '(comm)' field");
  auto pid = split_ws(text.substr(0, open));
  if (pid.size() != 1 || !parse_u64(pid[0]).ok)
    return R::failure("bad pid field");
  auto fields = split_ws(text.substr(close + 1));
  // fields[0] is field 3 (state); utime is 14, stime 15, rss 24.
  constexpr size_t kState = 0, kUtime = 11, kStime = 12, kRss = 21;
  if (fields.size() <= kRss)
    return R::failure("truncated: " + std::to_string(fields.size() + 2) + " fields, need 24");
  if (fields[kState].size() != 1)
    return R::failure("bad state field");
  PidStat s;
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  s.state = fields[kState][0];
  auto ut = parse_u64(fields[kUtime]);
  if (!ut.ok)
    return R::failure("utime: " + ut.error);
  auto st = parse_u64(fields[kStime]);
  if (!st.ok)
    return R::failure("stime: " + st.error);
  if (ut.value + st.value < ut.value)
    return R::failure("utime + stime overflows");
  std::string_view rss = fields[kRss];
  bool negative = !rss.empty() && rss[0] == '-';
  auto r = parse_u64(negative ? rss.substr(1) : rss);
  if (!r.ok || r.value > static_cast<uint64_t>(INT64_MAX))
    return R::failure("rss: " + (r.ok ? std::string("too large") : r.error));
  s.utime = ut.value;
  s.stime = st.value;
  s.rss_pages = negative ? -static_cast<int64_t>(r.value) : static_cast<int64_t>(r.value);
  return R::success(s);
}

Parsed<Statm> parse_statm(std::string_view text) {
  using R = Parsed<Statm>;
  auto fields = split_ws(first_line(text));
  if (fields.size() < 2)
    return R::failure("truncated: need size and resident");
  auto size = parse_u64(fields[0]);
  if (!size.ok)
    return R::failure("size: " + size.error);
  auto res = parse_u64(fields[1]);
  if (!res.ok)
    return R::failure("resident: " + res.error);
  return R::success({size.value, res.value});
}

namespace {

// The text without trailing whitespace: sysfs and cgroup files end in "\n".
std::string_view trim_end(std::string_view s) {
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// The only token of a one-value file; an error names what else was there.
Parsed<std::string_view> single_token(std::string_view text) {
  using R = Parsed<std::string_view>;
  auto fields = split_ws(text);
  if (fields.empty())
    return R::failure("empty");
  if (fields.size() > 1)
    return R::failure("more than one value");
  return R::success(fields[0]);
}

// A PSI share such as "2.87": digits, optionally a point and digits, in
// [0, 100]. Parsed without the C locale, which may use a decimal comma.
Parsed<double> parse_percent(std::string_view token) {
  using R = Parsed<double>;
  const size_t point = token.find('.');
  const std::string_view whole = token.substr(0, point);
  const std::string_view frac =
      point == std::string_view::npos ? std::string_view() : token.substr(point + 1);
  auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(whole) || (point != std::string_view::npos && !digits(frac)))
    return R::failure("not a percentage: '" + std::string(token) + "'");
  double v = 0;
  auto [ptr, ec] =
      std::from_chars(token.data(), token.data() + token.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != token.data() + token.size() || !(v <= 100.0))
    return R::failure("not a percentage: '" + std::string(token) + "'");
  return R::success(v);
}

Parsed<PsiLine> parse_psi_fields(const std::vector<std::string_view>& fields) {
  using R = Parsed<PsiLine>;
  PsiLine p;
  bool seen[4] = {false, false, false, false};
  static constexpr std::string_view kKeys[] = {"avg10", "avg60", "avg300", "total"};
  for (size_t i = 1; i < fields.size(); ++i) {
    const size_t eq = fields[i].find('=');
    if (eq == std::string_view::npos)
      return R::failure("'" + std::string(fields[i]) + "' is not key=value");
    const std::string_view key = fields[i].substr(0, eq);
    const std::string_view value = fields[i].substr(eq + 1);
    for (size_t k = 0; k < 4; ++k) {
      if (key != kKeys[k])
        continue;
      if (seen[k])
        return R::failure(std::string(key) + " twice");
      seen[k] = true;
      if (k == 3) {
        auto n = parse_u64(value);
        if (!n.ok)
          return R::failure("total: " + n.error);
        p.total_us = n.value;
      } else {
        auto v = parse_percent(value);
        if (!v.ok)
          return R::failure(std::string(key) + ": " + v.error);
        (k == 0 ? p.avg10 : k == 1 ? p.avg60 : p.avg300) = v.value;
      }
    }
    // Keys a later kernel may add are ignored.
  }
  for (size_t k = 0; k < 4; ++k)
    if (!seen[k])
      return R::failure(std::string(kKeys[k]) + " missing");
  return R::success(p);
}

}  // namespace

Parsed<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
  using R = Parsed<std::vector<unsigned>>;
  const std::string_view list = trim_end(text);
  if (list.empty())
    return R::failure("empty CPU list");
  // Ranges are merged before they are expanded, so repeats cost nothing.
  std::vector<std::pair<unsigned, unsigned>> ranges;
  size_t pos = 0;
  for (;;) {
    const size_t comma = list.find(',', pos);
    const std::string_view part =
        list.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    const size_t dash = part.find('-');
    auto first = parse_u64(part.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : parse_u64(part.substr(dash + 1));
    if (!first.ok || !last.ok)
      return R::failure("bad CPU range '" + std::string(part) + "'");
    if (first.value > last.value)
      return R::failure("CPU range '" + std::string(part) + "' runs backwards");
    if (last.value > kMaxCpuId)
      return R::failure("CPU id above " + std::to_string(kMaxCpuId) + " in '" + std::string(part) +
                        "'");
    ranges.emplace_back(static_cast<unsigned>(first.value), static_cast<unsigned>(last.value));
    if (comma == std::string_view::npos)
      break;
    pos = comma + 1;
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<unsigned> cpus;
  unsigned next = 0;  // the lowest id not yet listed
  for (const auto& [a, b] : ranges) {
    for (unsigned id = std::max(a, next); id <= b; ++id)
      cpus.push_back(id);
    next = std::max(next, b + 1);
  }
  return R::success(std::move(cpus));
}

const CgroupEntry* CgroupMembership::v2() const {
  for (const CgroupEntry& e : entries)
    if (e.hierarchy == 0 && e.controllers.empty())
      return &e;
  return nullptr;
}

const CgroupEntry* CgroupMembership::v1(std::string_view controller) const {
  for (const CgroupEntry& e : entries) {
    if (e.hierarchy == 0)
      continue;
    for (const std::string& c : e.controllers)
      if (c == controller)
        return &e;
  }
  return nullptr;
}

Parsed<CgroupMembership> parse_proc_cgroup(std::string_view text) {
  using R = Parsed<CgroupMembership>;
  CgroupMembership m;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    if (trim_end(line).empty())
      continue;
    // The path is the rest of the line and may itself hold ':'.
    const size_t c1 = line.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos)
      return R::failure("line '" + std::string(line.substr(0, 80)) +
                        "' is not id:controllers:path");
    auto id = parse_u64(line.substr(0, c1));
    if (!id.ok || id.value > UINT32_MAX)
      return R::failure("bad hierarchy id: " + (id.ok ? "too large" : id.error));
    CgroupEntry e;
    e.hierarchy = static_cast<unsigned>(id.value);
    std::string_view list = line.substr(c1 + 1, c2 - c1 - 1);
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view name = list.substr(0, comma);
      if (name.empty())
        return R::failure("empty controller name");
      e.controllers.emplace_back(name);
      if (comma == std::string_view::npos)
        break;
      list.remove_prefix(comma + 1);
    }
    e.path = std::string(line.substr(c2 + 1));
    if (e.path.empty() || e.path[0] != '/')
      return R::failure("cgroup path '" + e.path.substr(0, 80) + "' is not absolute");
    m.entries.push_back(std::move(e));
  }
  if (m.entries.empty())
    return R::failure("no cgroup lines");
  return R::success(std::move(m));
}

Parsed<CpuQuota> parse_cpu_max(std::string_view text) {
  using R = Parsed<CpuQuota>;
  auto fields = split_ws(text);
  if (fields.size() != 2)
    return R::failure("expected '$QUOTA $PERIOD'");
  CpuQuota q;
  if (fields[0] != "max") {
    auto quota = parse_u64(fields[0]);
    if (!quota.ok)
      return R::failure("quota: " + quota.error);
    if (quota.value == 0)
      return R::failure("quota is 0");
    q.quota_us = quota.value;
  }
  auto period = parse_u64(fields[1]);
  if (!period.ok)
    return R::failure("period: " + period.error);
  if (period.value == 0)
    return R::failure("period is 0");
  q.period_us = period.value;
  return R::success(q);
}

Parsed<std::optional<uint64_t>> parse_cfs_quota(std::string_view text) {
  using R = Parsed<std::optional<uint64_t>>;
  auto token = single_token(text);
  if (!token.ok)
    return R::failure(token.error);
  if (token.value == "-1")
    return R::success(std::nullopt);
  auto n = parse_u64(token.value);
  if (!n.ok)
    return R::failure(n.error);
  if (n.value == 0)
    return R::failure("quota is 0");
  return R::success(n.value);
}

Parsed<uint64_t> parse_cgroup_value(std::string_view text) {
  auto token = single_token(text);
  if (!token.ok)
    return Parsed<uint64_t>::failure(token.error);
  return parse_u64(token.value);
}

Parsed<std::optional<uint64_t>> parse_cgroup_limit(std::string_view text) {
  using R = Parsed<std::optional<uint64_t>>;
  auto token = single_token(text);
  if (!token.ok)
    return R::failure(token.error);
  if (token.value == "max")
    return R::success(std::nullopt);
  auto n = parse_u64(token.value);
  if (!n.ok)
    return R::failure(n.error);
  return R::success(n.value);
}

std::optional<uint64_t> FlatKeyed::get(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key)
      return v;
  return std::nullopt;
}

Parsed<FlatKeyed> parse_flat_keyed(std::string_view text) {
  using R = Parsed<FlatKeyed>;
  FlatKeyed out;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    auto fields = split_ws(line);
    if (fields.empty())
      continue;
    const std::string key(fields[0].substr(0, 80));
    if (fields.size() != 2)
      return R::failure("line '" + key + "' is not 'key value'");
    auto n = parse_u64(fields[1]);
    if (!n.ok)
      return R::failure(key + ": " + n.error);
    if (out.get(fields[0]))
      return R::failure(key + " twice");
    out.entries.emplace_back(std::string(fields[0]), n.value);
  }
  return R::success(std::move(out));
}

Parsed<Psi> parse_psi(std::string_view text) {
  using R = Parsed<Psi>;
  Psi psi;
  bool have_some = false;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    auto fields = split_ws(line);
    if (fields.empty())
      continue;
    const bool some = fields[0] == "some";
    if (!some && fields[0] != "full")
      return R::failure("line '" + std::string(fields[0].substr(0, 80)) +
                        "' is neither some nor full");
    if (some ? have_some : psi.full.has_value())
      return R::failure(std::string(fields[0]) + " twice");
    auto p = parse_psi_fields(fields);
    if (!p.ok)
      return R::failure(std::string(fields[0]) + ": " + p.error);
    if (some) {
      psi.some = p.value;
      have_some = true;
    } else {
      psi.full = p.value;
    }
  }
  if (!have_some)
    return R::failure("no 'some' line");
  return R::success(psi);
}

}  // namespace aq
