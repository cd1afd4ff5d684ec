// /proc and cgroup parsers: exact values from texts captured on a real
// machine, tables of edge values, and a table of malformed inputs that must
// each give an error, never a value.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proc_parse.h"
#include "core_test.h"

using aqtest::contains;
using aqtest::read_fixture;

namespace {

// Field `n` (1-based, n >= 3, as in proc(5)) of a /proc/<pid>/stat text
// replaced by `value`; fields after the command name are space-separated.
std::string with_pid_field(const std::string& text, size_t n, const std::string& value) {
  const size_t close = text.rfind(')');
  std::string out = text.substr(0, close + 1);
  size_t pos = close + 1, field = 2;
  while (pos < text.size()) {
    const size_t start = text.find_first_not_of(" \n", pos);
    if (start == std::string::npos)
      break;
    size_t end = text.find_first_of(" \n", start);
    if (end == std::string::npos)
      end = text.size();
    ++field;
    out += ' ';
    out += field == n ? value : text.substr(start, end - start);
    pos = end;
  }
  return out + "\n";
}

// The text up to and including field `n` of a /proc/<pid>/stat.
std::string pid_fields_up_to(const std::string& text, size_t n) {
  std::string out = with_pid_field(text, 0, "");
  size_t pos = out.rfind(')') + 1;
  for (size_t field = 3; field <= n; ++field)
    pos = out.find(' ', pos + 1);
  return out.substr(0, pos);
}

// The text without the line that starts with `key`.
std::string without_line(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos)
    return text;
  const size_t nl = text.find('\n', at);
  return text.substr(0, at) + (nl == std::string::npos ? "" : text.substr(nl + 1));
}

// ---- fixtures captured from this machine ----

START_TEST(proc_stat_fixture) {
  // cpu  14070 0 11029 2566405 968 0 519 10 0 0
  const auto r = aq::parse_proc_stat(read_fixture("proc/stat"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert(r.error.empty());
  ck_assert_uint_eq(r.value.user, 14070);
  ck_assert_uint_eq(r.value.nice, 0);
  ck_assert_uint_eq(r.value.system, 11029);
  ck_assert_uint_eq(r.value.idle, 2566405);
  ck_assert_uint_eq(r.value.iowait, 968);
  ck_assert_uint_eq(r.value.irq, 0);
  ck_assert_uint_eq(r.value.softirq, 519);
  ck_assert_uint_eq(r.value.steal, 10);
  ck_assert_uint_eq(r.value.guest, 0);
  ck_assert_uint_eq(r.value.guest_nice, 0);
  // 14070+0+11029+2566405+968+0+519+10
  ck_assert_uint_eq(r.value.total(), 2593001);
  // 2593001-2566405-968 = 14070+11029+519+10
  ck_assert_uint_eq(r.value.busy(), 25628);
}
END_TEST

START_TEST(proc_stat_old_and_new_kernels) {
  // Only user nice system idle (2.4 kernels): the rest stay 0.
  auto r = aq::parse_proc_stat("cpu  1 2 3 4\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.idle, 4);
  ck_assert_uint_eq(r.value.iowait, 0);
  ck_assert_uint_eq(r.value.total(), 10);
  ck_assert_uint_eq(r.value.busy(), 6);
  // A counter a future kernel might add is ignored.
  r = aq::parse_proc_stat("cpu  1 2 3 4 5 6 7 8 9 10 11\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.guest_nice, 10);
  ck_assert_uint_eq(r.value.total(), 36);  // 1+..+8
  // The aggregate line is found after other lines too.
  r = aq::parse_proc_stat("intr 5\ncpu0 9 9 9 9\ncpu 4 3 2 1\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.user, 4);
}
END_TEST

START_TEST(proc_stat_guest_is_not_counted_twice) {
  // guest 40 and guest_nice 10 are already inside user 100 and nice 20.
  const auto r = aq::parse_proc_stat("cpu  100 20 0 80 0 0 0 0 40 10\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.total(), 200);
  ck_assert_uint_eq(r.value.busy(), 120);
}
END_TEST

START_TEST(meminfo_fixture) {
  const auto r = aq::parse_meminfo(read_fixture("proc/meminfo"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.total_kb, 24684092);
  ck_assert_uint_eq(r.value.available_kb, 24358576);
  ck_assert(!r.value.available_estimated);
}
END_TEST

START_TEST(meminfo_without_memavailable_estimates) {
  // MemFree + Buffers + Cached = 24367992 + 1312 + 162720
  const auto r = aq::parse_meminfo(without_line(read_fixture("proc/meminfo"), "MemAvailable:"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.total_kb, 24684092);
  ck_assert_uint_eq(r.value.available_kb, 24532024);
  ck_assert(r.value.available_estimated);
  // Buffers and Cached may be absent: MemFree alone.
  const auto bare = aq::parse_meminfo("MemTotal: 1000 kB\nMemFree: 300 kB\n");
  ck_assert_msg(bare.ok, "%s", bare.error.c_str());
  ck_assert_uint_eq(bare.value.available_kb, 300);
  ck_assert(bare.value.available_estimated);
}
END_TEST

START_TEST(meminfo_available_above_total_is_capped) {
  const auto r = aq::parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 1500 kB\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.available_kb, 1000);
}
END_TEST

START_TEST(pid_stat_fixture) {
  // 14469 (bash) S 14467 ... fields 14/15 utime 38 stime 0, field 24 rss 762
  const auto r = aq::parse_pid_stat(read_fixture("proc/self/stat"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_str_eq(r.value.comm.c_str(), "bash");
  ck_assert_int_eq(r.value.state, 'S');
  ck_assert_uint_eq(r.value.utime, 38);
  ck_assert_uint_eq(r.value.stime, 0);
  ck_assert_int_eq(r.value.rss_pages, 762);
}
END_TEST

START_TEST(pid_stat_command_with_spaces_and_parens) {
  // A real process run from an executable named "a b) (c d)e".
  const std::string text = read_fixture("proc/pid_stat_spaces");
  ck_assert(contains(text, "(a b) (c d)e) S "));
  const auto r = aq::parse_pid_stat(text);
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_str_eq(r.value.comm.c_str(), "a b) (c d)e");
  ck_assert_int_eq(r.value.state, 'S');
  ck_assert_uint_eq(r.value.utime, 27);
  ck_assert_uint_eq(r.value.stime, 0);
  ck_assert_int_eq(r.value.rss_pages, 799);
}
END_TEST

START_TEST(pid_stat_large_and_signed_fields) {
  const std::string base = read_fixture("proc/self/stat");
  auto r =
      aq::parse_pid_stat(with_pid_field(with_pid_field(base, 14, "18446744073709551614"), 15, "1"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.utime, UINT64_MAX - 1);
  // rss is a signed field in proc(5).
  r = aq::parse_pid_stat(with_pid_field(base, 24, "-5"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_int_eq(r.value.rss_pages, -5);
  r = aq::parse_pid_stat(with_pid_field(base, 24, "9223372036854775807"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_int_eq(r.value.rss_pages, INT64_MAX);
}
END_TEST

START_TEST(statm_fixture) {
  // 1090 773 703 193 0 109 0
  const auto r = aq::parse_statm(read_fixture("proc/self/statm"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.size_pages, 1090);
  ck_assert_uint_eq(r.value.resident_pages, 773);
}
END_TEST

START_TEST(proc_stat_cpus_fixture) {
  // cpu0 6564 0 3498 1286010 62 0 66 3 0 0
  // cpu1 7505 0 7531 1280395 906 0 452 6 0 0
  const auto r = aq::parse_proc_stat_cpus(read_fixture("proc/stat"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.size(), 2);
  ck_assert_uint_eq(r.value[0].id, 0);
  ck_assert_uint_eq(r.value[0].times.user, 6564);
  ck_assert_uint_eq(r.value[0].times.total(), 6564 + 3498 + 1286010 + 62 + 66 + 3);
  ck_assert_uint_eq(r.value[0].times.busy(), 6564 + 3498 + 66 + 3);
  ck_assert_uint_eq(r.value[1].id, 1);
  ck_assert_uint_eq(r.value[1].times.iowait, 906);
  ck_assert_uint_eq(r.value[1].times.busy(), 7505 + 7531 + 452 + 6);
}
END_TEST

START_TEST(proc_stat_cpus_gaps_and_order) {
  // An offline CPU has no line; the ids keep their numbers; the aggregate
  // line and names like "cpufreq" are not CPUs.
  const auto r = aq::parse_proc_stat_cpus(
      "cpu  9 9 9 9\ncpu3 1 2 3 4\ncpufreq 5\ncpu0 4 3 2 1 0 0 0 0 0 0 7\ncpux 1 1 1 1\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.size(), 2);
  ck_assert_uint_eq(r.value[0].id, 3);
  ck_assert_uint_eq(r.value[0].times.total(), 10);
  ck_assert_uint_eq(r.value[1].id, 0);
  ck_assert_uint_eq(r.value[1].times.user, 4);
}
END_TEST

START_TEST(proc_stat_cpus_id_bound) {
  // The highest id a CPU list may name is a CPU; one above is not.
  const auto r = aq::parse_proc_stat_cpus("cpu65535 1 2 3 4\ncpu65536 5 6 7 8\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.size(), 1);
  ck_assert_uint_eq(r.value[0].id, aq::kMaxCpuId);
}
END_TEST

START_TEST(proc_cgroup_fixture) {
  // This machine: cgroup v1 hierarchies, each with its own mount, and the
  // v2 hierarchy with no controllers (a hybrid host).
  const auto r = aq::parse_proc_cgroup(read_fixture("proc/self/cgroup"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.entries.size(), 10);
  const aq::CgroupEntry* mem = r.value.v1("memory");
  ck_assert_ptr_nonnull(mem);
  ck_assert_uint_eq(mem->hierarchy, 4);
  ck_assert_str_eq(mem->path.c_str(), "/app/worker");
  ck_assert_ptr_nonnull(r.value.v1("cpuacct"));
  ck_assert_str_eq(r.value.v1("cpu")->path.c_str(), "/");
  ck_assert_ptr_null(r.value.v1("hugetlb"));
  // "name=systemd" is a named hierarchy, not a controller called systemd.
  ck_assert_ptr_null(r.value.v1("systemd"));
  ck_assert_ptr_nonnull(r.value.v2());
  ck_assert_str_eq(r.value.v2()->path.c_str(), "/");
}
END_TEST

START_TEST(proc_cgroup_layouts) {
  // Docker on v1: cpu and cpuacct share a hierarchy.
  auto r = aq::parse_proc_cgroup("4:cpu,cpuacct:/docker/abc\n0::/system.slice/x.service\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_ptr_eq(r.value.v1("cpu"), r.value.v1("cpuacct"));
  ck_assert_uint_eq(r.value.v1("cpu")->controllers.size(), 2);
  ck_assert_str_eq(r.value.v2()->path.c_str(), "/system.slice/x.service");
  // Pure v2; the path is the rest of the line, ':' included.
  r = aq::parse_proc_cgroup("0::/odd:name/a b\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_ptr_null(r.value.v1("cpu"));
  ck_assert_str_eq(r.value.v2()->path.c_str(), "/odd:name/a b");
  // v1 only: no v2 entry.
  r = aq::parse_proc_cgroup("2:memory:/\n\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_ptr_null(r.value.v2());
}
END_TEST

START_TEST(flat_keyed_fixtures) {
  // memory.stat of a v1 memory cgroup on this machine.
  auto r = aq::parse_flat_keyed(read_fixture("cgroup-files/v1-memory.stat"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.entries.size(), 42);
  ck_assert(r.value.get("total_inactive_file") == std::optional<uint64_t>(473530368));
  ck_assert(r.value.get("hierarchical_memory_limit") ==
            std::optional<uint64_t>(9223372036854771712u));
  ck_assert(!r.value.get("inactive"));
  // v1 cpu.stat of the cpu hierarchy's root.
  r = aq::parse_flat_keyed(read_fixture("cgroup-files/v1-cpu.stat"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert(r.value.get("nr_throttled") == std::optional<uint64_t>(0));
  // v2 cpu.stat without the cpu controller: usage only, no throttling.
  r = aq::parse_flat_keyed(read_fixture("cgroup-files/v2-cpu.stat-no-controller"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert(r.value.get("usage_usec") == std::optional<uint64_t>(1016268000));
  ck_assert(!r.value.get("nr_throttled"));
  // Empty is valid: no keys.
  r = aq::parse_flat_keyed("");
  ck_assert(r.ok && r.value.entries.empty());
}
END_TEST

// Blank lines (a trailing one, or one in the middle) are skipped, not
// taken for a malformed entry.
START_TEST(blank_lines_skipped) {
  const auto cpus = aq::parse_proc_stat_cpus("cpu  1 1 1 1\n\ncpu1 1 2 3 4\n\n");
  ck_assert_msg(cpus.ok, "%s", cpus.error.c_str());
  ck_assert_uint_eq(cpus.value.size(), 1);
  ck_assert_uint_eq(cpus.value[0].id, 1);
  const auto keyed = aq::parse_flat_keyed("a 1\n\nb 2\n");
  ck_assert_msg(keyed.ok, "%s", keyed.error.c_str());
  ck_assert_uint_eq(keyed.value.entries.size(), 2);
  ck_assert(keyed.value.get("b") == std::optional<uint64_t>(2));
  const auto psi = aq::parse_psi("\nsome avg10=1.50 avg60=0 avg300=0 total=7\n\n");
  ck_assert_msg(psi.ok, "%s", psi.error.c_str());
  ck_assert_double_eq_tol(psi.value.some.avg10, 1.5, 1e-12);
  ck_assert_uint_eq(psi.value.some.total_us, 7);
}
END_TEST

START_TEST(psi_fixtures) {
  // some avg10=93.74 avg60=81.23 avg300=48.99 total=310688228
  auto r = aq::parse_psi(read_fixture("proc/pressure/cpu"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_double_eq_tol(r.value.some.avg10, 93.74, 1e-12);
  ck_assert_double_eq_tol(r.value.some.avg60, 81.23, 1e-12);
  ck_assert_double_eq_tol(r.value.some.avg300, 48.99, 1e-12);
  ck_assert_uint_eq(r.value.some.total_us, 310688228);
  ck_assert(r.value.full.has_value());
  ck_assert_double_eq(r.value.full->avg10, 0.0);
  r = aq::parse_psi(read_fixture("proc/pressure/memory"));
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_double_eq(r.value.some.avg10, 0.0);
  // Kernels before 5.13 have no "full" line for CPU; 100.00 is the top.
  r = aq::parse_psi("some avg10=100.00 avg60=0 avg300=7.5 total=18446744073709551615\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_double_eq(r.value.some.avg10, 100.0);
  ck_assert_double_eq(r.value.some.avg300, 7.5);
  ck_assert(!r.value.full.has_value());
  // Keys a later kernel may add are ignored; order does not matter.
  r = aq::parse_psi("some total=5 avg300=1.00 avg60=2.00 avg10=3.00 avg1=9.00\n");
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_double_eq(r.value.some.avg10, 3.0);
}
END_TEST

// ---- tables of edge values ----

struct CpuListCase {
  const char* text;
  bool ok;
  std::vector<unsigned> cpus;
  const char* error;
};

const CpuListCase kCpuLists[] = {
    {"0\n", true, {0}, ""},
    {"0-3,5\n", true, {0, 1, 2, 3, 5}, ""},
    {"5,0-2,1,2-3", true, {0, 1, 2, 3, 5}, ""},  // unsorted, overlapping
    {"7-7", true, {7}, ""},
    {"65535", true, {65535}, ""},
    {"65534-65535,0", true, {0, 65534, 65535}, ""},
    {"", false, {}, "empty CPU list"},
    {"\n", false, {}, "empty CPU list"},
    {"3-1", false, {}, "runs backwards"},
    {"1-", false, {}, "bad CPU range '1-'"},
    {"-1", false, {}, "bad CPU range"},
    {"0,,1", false, {}, "bad CPU range ''"},
    {"0,", false, {}, "bad CPU range ''"},
    {"a", false, {}, "bad CPU range 'a'"},
    {"0-3:1/2", false, {}, "bad CPU range"},  // the group syntax is input only
    {"1 ,2", false, {}, "bad CPU range"},
    {"65536", false, {}, "CPU id above 65535"},
    {"0-18446744073709551616", false, {}, "bad CPU range"},
    {"0-4294967296", false, {}, "CPU id above 65535"},
    {"0-4294967295", false, {}, "CPU id above 65535"},
};

START_TEST(cpu_list_table) {
  const CpuListCase& c = kCpuLists[_i];
  const auto r = aq::parse_cpu_list(c.text);
  ck_assert_msg(r.ok == c.ok, "'%s': ok=%d (%s)", c.text, r.ok, r.error.c_str());
  if (c.ok) {
    ck_assert_msg(r.value == c.cpus, "'%s': %zu CPUs", c.text, r.value.size());
  } else {
    ck_assert_msg(contains(r.error, c.error), "'%s': error '%s', expected '%s'", c.text,
                  r.error.c_str(), c.error);
  }
}
END_TEST

START_TEST(cpu_list_large_range_is_cheap) {
  // 64 Ki ids, repeated 10000 times: merged before expanding.
  std::string text;
  for (int i = 0; i < 10000; ++i)
    text += "0-65535,";
  text += "0";
  const auto r = aq::parse_cpu_list(text);
  ck_assert_msg(r.ok, "%s", r.error.c_str());
  ck_assert_uint_eq(r.value.size(), 65536);
  ck_assert_uint_eq(r.value.back(), 65535);
}
END_TEST

// One table for the one-value cgroup files; `quota` is the value or -1 for
// none, `period` is checked for cpu.max only.
enum class ValueKind { CpuMax, CfsQuota, Value, Limit };

struct ValueCase {
  ValueKind kind;
  const char* text;
  bool ok;
  int64_t value;  // -1: none ("max", quota -1)
  uint64_t period;
  const char* error;
};

const ValueCase kValues[] = {
    {ValueKind::CpuMax, "20000 100000\n", true, 20000, 100000, ""},
    {ValueKind::CpuMax, "max 100000\n", true, -1, 100000, ""},
    {ValueKind::CpuMax, "150000 50000", true, 150000, 50000, ""},
    {ValueKind::CpuMax, "20000\n", false, 0, 0, "expected '$QUOTA $PERIOD'"},
    {ValueKind::CpuMax, "20000 100000 1\n", false, 0, 0, "expected"},
    {ValueKind::CpuMax, "", false, 0, 0, "expected"},
    {ValueKind::CpuMax, "0 100000", false, 0, 0, "quota is 0"},
    {ValueKind::CpuMax, "max 0", false, 0, 0, "period is 0"},
    {ValueKind::CpuMax, "max max", false, 0, 0, "period: not a number: 'max'"},
    {ValueKind::CpuMax, "-1 100000", false, 0, 0, "quota: not a number: '-1'"},
    {ValueKind::CpuMax, "MAX 100000", false, 0, 0, "quota: not a number"},
    {ValueKind::CfsQuota, "-1\n", true, -1, 0, ""},
    {ValueKind::CfsQuota, "20000\n", true, 20000, 0, ""},
    {ValueKind::CfsQuota, "0\n", false, 0, 0, "quota is 0"},
    {ValueKind::CfsQuota, "-2\n", false, 0, 0, "not a number: '-2'"},
    {ValueKind::CfsQuota, "\n", false, 0, 0, "empty"},
    {ValueKind::CfsQuota, "1 2\n", false, 0, 0, "more than one value"},
    {ValueKind::Value, "912472430366\n", true, 912472430366, 0, ""},
    {ValueKind::Value, "0", true, 0, 0, ""},
    {ValueKind::Value, "max\n", false, 0, 0, "not a number: 'max'"},
    {ValueKind::Value, "", false, 0, 0, "empty"},
    {ValueKind::Value, "12\n34\n", false, 0, 0, "more than one value"},
    {ValueKind::Value, "18446744073709551616", false, 0, 0, "overflows 64 bits"},
    {ValueKind::Limit, "max\n", true, -1, 0, ""},
    {ValueKind::Limit, "419430400\n", true, 419430400, 0, ""},
    {ValueKind::Limit, "9223372036854771712\n", true, 9223372036854771712, 0, ""},
    {ValueKind::Limit, "Max\n", false, 0, 0, "not a number: 'Max'"},
    {ValueKind::Limit, "-1\n", false, 0, 0, "not a number"},
    {ValueKind::Limit, "400M\n", false, 0, 0, "not a number: '400M'"},
};

START_TEST(cgroup_value_table) {
  const ValueCase& c = kValues[_i];
  bool ok = false;
  std::string error;
  std::optional<uint64_t> value;
  uint64_t period = 0;
  switch (c.kind) {
    case ValueKind::CpuMax: {
      const auto r = aq::parse_cpu_max(c.text);
      ok = r.ok, error = r.error, value = r.value.quota_us, period = r.value.period_us;
      break;
    }
    case ValueKind::CfsQuota: {
      const auto r = aq::parse_cfs_quota(c.text);
      ok = r.ok, error = r.error, value = r.value;
      break;
    }
    case ValueKind::Value: {
      const auto r = aq::parse_cgroup_value(c.text);
      ok = r.ok, error = r.error, value = r.value;
      break;
    }
    case ValueKind::Limit: {
      const auto r = aq::parse_cgroup_limit(c.text);
      ok = r.ok, error = r.error, value = r.value;
      break;
    }
  }
  ck_assert_msg(ok == c.ok, "row %d '%s': ok=%d (%s)", _i, c.text, ok, error.c_str());
  ck_assert_msg(ok == error.empty(), "row %d: ok and error disagree", _i);
  if (!ok) {
    ck_assert_msg(contains(error, c.error), "row %d '%s': error '%s', expected '%s'", _i, c.text,
                  error.c_str(), c.error);
    return;
  }
  if (c.value < 0) {
    ck_assert_msg(!value.has_value(), "row %d '%s': a value where none is", _i, c.text);
  } else {
    ck_assert_msg(value && *value == static_cast<uint64_t>(c.value), "row %d '%s'", _i, c.text);
  }
  if (c.kind == ValueKind::CpuMax)
    ck_assert_uint_eq(period, c.period);
}
END_TEST

// ---- parse_u64 ----

struct U64Case {
  const char* text;
  bool ok;
  uint64_t value;
  const char* error;
};

const U64Case kU64Cases[] = {
    {"0", true, 0, ""},
    {"42", true, 42, ""},
    {"007", true, 7, ""},
    {"18446744073709551615", true, UINT64_MAX, ""},
    {"18446744073709551616", false, 0, "overflows 64 bits"},
    {"99999999999999999999999", false, 0, "overflows 64 bits"},
    {"", false, 0, "empty number"},
    {"-1", false, 0, "not a number: '-1'"},
    {"+1", false, 0, "not a number: '+1'"},
    {" 1", false, 0, "not a number"},
    {"1 ", false, 0, "not a number"},
    {"12a", false, 0, "not a number: '12a'"},
    {"0x10", false, 0, "not a number"},
};

START_TEST(parse_u64_table) {
  const U64Case& c = kU64Cases[_i];
  const auto r = aq::parse_u64(c.text);
  ck_assert_msg(r.ok == c.ok, "'%s': ok=%d (%s)", c.text, r.ok, r.error.c_str());
  if (c.ok) {
    ck_assert_msg(r.value == c.value, "'%s': %ju", c.text, static_cast<uintmax_t>(r.value));
  } else {
    ck_assert_msg(contains(r.error, c.error), "'%s': error '%s', expected '%s'", c.text,
                  r.error.c_str(), c.error);
  }
}
END_TEST

// ---- malformed inputs ----

enum class Kind { Stat, StatCpus, Meminfo, PidStat, Statm, ProcCgroup, FlatKeyed, Psi };

struct BadCase {
  const char* name;
  Kind kind;
  std::string text;
  const char* error;  // a substring of the expected error
};

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = [] {
    const std::string stat = aqtest::fixture_or_empty("proc/stat");
    const std::string meminfo = aqtest::fixture_or_empty("proc/meminfo");
    const std::string self = aqtest::fixture_or_empty("proc/self/stat");
    const std::string u64_max = "18446744073709551615";
    const std::string over = "18446744073709551616";  // 2^64
    return std::vector<BadCase>{
        {"stat: empty", Kind::Stat, "", "no 'cpu' line"},
        {"stat: per-cpu lines only", Kind::Stat, "cpu0 1 2 3 4\ncpu1 1 2 3 4\n", "no 'cpu' line"},
        {"stat: truncated fixture", Kind::Stat, stat.substr(0, 12),  // "cpu  14070 0"
         "fewer than 4 counters"},
        {"stat: three counters", Kind::Stat, "cpu  1 2 3\n", "fewer than 4 counters"},
        {"stat: garbage counter", Kind::Stat, "cpu  1 2 x 4\n", "cpu counter 3: not a number: 'x'"},
        {"stat: decimal counter", Kind::Stat, "cpu  1 2 3 4.5\n", "cpu counter 4: not a number"},
        {"stat: negative counter", Kind::Stat, "cpu  1 -2 3 4\n", "cpu counter 2: not a number"},
        {"stat: counter over 2^64", Kind::Stat, "cpu  " + over + " 0 0 0\n",
         "cpu counter 1: number overflows 64 bits"},
        {"stat: counters sum over 2^64", Kind::Stat, "cpu  " + u64_max + " 1 0 0\n",
         "cpu counters overflow their sum"},
        {"stat: blank lines only", Kind::Stat, "\n\n", "no 'cpu' line"},
        {"stat: binary garbage", Kind::Stat,
         std::string("\x7f"
                     "ELF\x02\x01\x01\0\0",
                     9),
         "no 'cpu' line"},
        {"meminfo: empty", Kind::Meminfo, "", "MemTotal missing"},
        {"meminfo: fixture without MemTotal", Kind::Meminfo, without_line(meminfo, "MemTotal:"),
         "MemTotal missing"},
        {"meminfo: truncated after the key", Kind::Meminfo, meminfo.substr(0, 10),
         "MemTotal has no value"},
        {"meminfo: MemTotal 0", Kind::Meminfo, "MemTotal: 0 kB\nMemAvailable: 0 kB\n",
         "MemTotal is 0"},
        {"meminfo: unit MB", Kind::Meminfo, "MemTotal: 1000 MB\nMemAvailable: 10 kB\n",
         "MemTotal has unit 'MB', expected kB"},
        {"meminfo: unit kb", Kind::Meminfo, "MemTotal: 1000 kB\nMemAvailable: 10 kb\n",
         "MemAvailable has unit 'kb'"},
        {"meminfo: negative", Kind::Meminfo, "MemTotal: -5 kB\n", "MemTotal: not a number: '-5'"},
        {"meminfo: over 2^64", Kind::Meminfo, "MemTotal: " + over + " kB\n",
         "MemTotal: number overflows 64 bits"},
        {"meminfo: garbage value", Kind::Meminfo, "MemTotal: 1000 kB\nMemAvailable: 12x kB\n",
         "MemAvailable: not a number: '12x'"},
        {"meminfo: neither MemAvailable nor MemFree", Kind::Meminfo,
         "MemTotal: 1000 kB\nSwapTotal: 0 kB\n", "neither MemAvailable nor MemFree"},
        {"meminfo: fallback sum over 2^64", Kind::Meminfo,
         "MemTotal: 100 kB\nMemFree: " + u64_max + " kB\nBuffers: 1 kB\n",
         "MemFree + Buffers + Cached overflows"},
        {"meminfo: fallback sum over 2^64 with Cached", Kind::Meminfo,
         "MemTotal: 100 kB\nMemFree: 18446744073709551614 kB\nBuffers: 1 kB\nCached: 1 kB\n",
         "MemFree + Buffers + Cached overflows"},
        {"pid stat: empty", Kind::PidStat, "", "no '(comm)' field"},
        {"pid stat: no closing paren", Kind::PidStat, "123 (cat R 1 2 3\n", "no '(comm)' field"},
        {"pid stat: parens reversed", Kind::PidStat, ") 123 (cat\n", "no '(comm)' field"},
        {"pid stat: garbage pid", Kind::PidStat, "x" + self, "bad pid field"},
        {"pid stat: two pids", Kind::PidStat, "7 " + self, "bad pid field"},
        {"pid stat: truncated after field 20", Kind::PidStat, pid_fields_up_to(self, 20),
         "truncated: 20 fields, need 24"},
        {"pid stat: truncated after utime", Kind::PidStat, pid_fields_up_to(self, 14),
         "truncated: 14 fields"},
        {"pid stat: two-letter state", Kind::PidStat, with_pid_field(self, 3, "RR"),
         "bad state field"},
        {"pid stat: garbage utime", Kind::PidStat, with_pid_field(self, 14, "x"),
         "utime: not a number: 'x'"},
        {"pid stat: negative utime", Kind::PidStat, with_pid_field(self, 14, "-3"),
         "utime: not a number: '-3'"},
        {"pid stat: stime over 2^64", Kind::PidStat, with_pid_field(self, 15, over),
         "stime: number overflows 64 bits"},
        {"pid stat: utime + stime over 2^64", Kind::PidStat,
         with_pid_field(with_pid_field(self, 14, u64_max), 15, "1"), "utime + stime overflows"},
        {"pid stat: garbage rss", Kind::PidStat, with_pid_field(self, 24, "12k"),
         "rss: not a number: '12k'"},
        {"pid stat: rss over int64", Kind::PidStat, with_pid_field(self, 24, "9223372036854775808"),
         "rss: too large"},
        {"pid stat: lone minus rss", Kind::PidStat, with_pid_field(self, 24, "-"),
         "rss: empty number"},
        {"statm: empty", Kind::Statm, "", "truncated: need size and resident"},
        {"statm: one field", Kind::Statm, "765\n", "truncated"},
        {"statm: values on the second line", Kind::Statm, "\n765 440\n", "truncated"},
        {"statm: garbage size", Kind::Statm, "a 440 0 0 0 0 0\n", "size: not a number: 'a'"},
        {"statm: negative resident", Kind::Statm, "765 -440\n", "resident: not a number: '-440'"},
        {"statm: resident over 2^64", Kind::Statm, "765 " + over + "\n",
         "resident: number overflows 64 bits"},
        {"stat cpus: aggregate only", Kind::StatCpus, "cpu  1 2 3 4\nintr 5\n", "no 'cpuN' lines"},
        {"stat cpus: empty", Kind::StatCpus, "", "no 'cpuN' lines"},
        {"stat cpus: three counters", Kind::StatCpus, "cpu0 1 2 3\n", "cpu0 line has fewer than 4"},
        {"stat cpus: garbage counter", Kind::StatCpus, "cpu0 1 2 3 4\ncpu1 1 x 3 4\n",
         "cpu1 counter 2: not a number: 'x'"},
        {"stat cpus: sum over 2^64", Kind::StatCpus, "cpu7 " + u64_max + " 1 0 0\n",
         "cpu7 counters overflow their sum"},
        {"stat cpus: an id above the cap is no CPU", Kind::StatCpus, "cpu65536 1 2 3 4\n",
         "no 'cpuN' lines"},
        {"stat cpus: one CPU twice", Kind::StatCpus, "cpu1 1 2 3 4\ncpu1 1 2 3 4\n",
         "two lines for cpu1"},
        {"cgroup: empty", Kind::ProcCgroup, "", "no cgroup lines"},
        {"cgroup: blank lines only", Kind::ProcCgroup, "\n\n", "no cgroup lines"},
        {"cgroup: one colon", Kind::ProcCgroup, "0:/\n", "is not id:controllers:path"},
        {"cgroup: garbage", Kind::ProcCgroup, "hello\n", "line 'hello' is not id:controllers:path"},
        {"cgroup: bad id", Kind::ProcCgroup, "x::/\n", "bad hierarchy id: not a number"},
        {"cgroup: id over 32 bits", Kind::ProcCgroup, "4294967296:cpu:/\n", "too large"},
        {"cgroup: relative path", Kind::ProcCgroup, "0::docker\n", "is not absolute"},
        {"cgroup: no path", Kind::ProcCgroup, "3:cpuset:\n", "is not absolute"},
        {"cgroup: empty controller", Kind::ProcCgroup, "4:cpu,,cpuacct:/\n",
         "empty controller name"},
        {"flat keyed: key alone", Kind::FlatKeyed, "usage_usec\n",
         "line 'usage_usec' is not 'key value'"},
        {"flat keyed: three fields", Kind::FlatKeyed, "a 1 2\n", "line 'a' is not"},
        {"flat keyed: garbage value", Kind::FlatKeyed, "nr_throttled x\n",
         "nr_throttled: not a number"},
        {"flat keyed: negative", Kind::FlatKeyed, "anon -4096\n", "anon: not a number: '-4096'"},
        {"flat keyed: key twice", Kind::FlatKeyed, "a 1\nb 2\na 3\n", "a twice"},
        {"psi: empty", Kind::Psi, "", "no 'some' line"},
        {"psi: full only", Kind::Psi, "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
         "no 'some' line"},
        {"psi: other line", Kind::Psi, "most avg10=0.00\n", "neither some nor full"},
        {"psi: some twice", Kind::Psi,
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 avg300=0.00 "
         "total=0\n",
         "some twice"},
        {"psi: no total", Kind::Psi, "some avg10=1.00 avg60=0.00 avg300=0.00\n",
         "some: total missing"},
        {"psi: avg10 twice", Kind::Psi, "some avg10=1.00 avg10=2.00 avg60=0 avg300=0 total=0\n",
         "avg10 twice"},
        {"psi: not key=value", Kind::Psi, "some avg10 avg60=0 avg300=0 total=0\n",
         "'avg10' is not key=value"},
        {"psi: above 100", Kind::Psi, "some avg10=100.01 avg60=0 avg300=0 total=0\n",
         "avg10: not a percentage: '100.01'"},
        {"psi: decimal comma", Kind::Psi, "some avg10=1,50 avg60=0 avg300=0 total=0\n",
         "not a percentage: '1,50'"},
        {"psi: negative", Kind::Psi, "some avg10=-1.00 avg60=0 avg300=0 total=0\n",
         "not a percentage"},
        {"psi: exponent", Kind::Psi, "some avg10=1e1 avg60=0 avg300=0 total=0\n",
         "not a percentage"},
        {"psi: nan", Kind::Psi, "some avg10=nan avg60=0 avg300=0 total=0\n", "not a percentage"},
        {"psi: bare point", Kind::Psi, "some avg10=1. avg60=0 avg300=0 total=0\n",
         "not a percentage"},
        {"psi: bad full", Kind::Psi,
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 "
         "total=x\n",
         "full: total: not a number"},
    };
  }();
  return cases;
}

// ok plus error text of whichever parser the case names.
std::pair<bool, std::string> run_parser(const BadCase& c) {
  switch (c.kind) {
    case Kind::Stat: {
      auto r = aq::parse_proc_stat(c.text);
      return {r.ok, r.error};
    }
    case Kind::StatCpus: {
      auto r = aq::parse_proc_stat_cpus(c.text);
      return {r.ok, r.error};
    }
    case Kind::ProcCgroup: {
      auto r = aq::parse_proc_cgroup(c.text);
      return {r.ok, r.error};
    }
    case Kind::FlatKeyed: {
      auto r = aq::parse_flat_keyed(c.text);
      return {r.ok, r.error};
    }
    case Kind::Psi: {
      auto r = aq::parse_psi(c.text);
      return {r.ok, r.error};
    }
    case Kind::Meminfo: {
      auto r = aq::parse_meminfo(c.text);
      return {r.ok, r.error};
    }
    case Kind::PidStat: {
      auto r = aq::parse_pid_stat(c.text);
      return {r.ok, r.error};
    }
    case Kind::Statm: {
      auto r = aq::parse_statm(c.text);
      return {r.ok, r.error};
    }
  }
  return {true, ""};
}

START_TEST(malformed_table) {
  const BadCase& c = bad_cases()[static_cast<size_t>(_i)];
  const auto [ok, error] = run_parser(c);
  ck_assert_msg(!ok, "%s: parsed", c.name);
  ck_assert_msg(!error.empty(), "%s: empty error", c.name);
  ck_assert_msg(contains(error, c.error), "%s: error '%s', expected '%s'", c.name, error.c_str(),
                c.error);
}
END_TEST

START_TEST(malformed_table_is_large_enough) {
  ck_assert_uint_ge(bad_cases().size(), 15);
}
END_TEST

Suite* proc_parse_suite() {
  Suite* s = suite_create("proc_parse");
  TCase* fixtures = tcase_create("fixtures");
  tcase_add_test(fixtures, proc_stat_fixture);
  tcase_add_test(fixtures, proc_stat_old_and_new_kernels);
  tcase_add_test(fixtures, proc_stat_guest_is_not_counted_twice);
  tcase_add_test(fixtures, meminfo_fixture);
  tcase_add_test(fixtures, meminfo_without_memavailable_estimates);
  tcase_add_test(fixtures, meminfo_available_above_total_is_capped);
  tcase_add_test(fixtures, pid_stat_fixture);
  tcase_add_test(fixtures, pid_stat_command_with_spaces_and_parens);
  tcase_add_test(fixtures, pid_stat_large_and_signed_fields);
  tcase_add_test(fixtures, statm_fixture);
  tcase_add_test(fixtures, proc_stat_cpus_fixture);
  tcase_add_test(fixtures, proc_stat_cpus_gaps_and_order);
  tcase_add_test(fixtures, proc_stat_cpus_id_bound);
  tcase_add_test(fixtures, proc_cgroup_fixture);
  tcase_add_test(fixtures, proc_cgroup_layouts);
  tcase_add_test(fixtures, flat_keyed_fixtures);
  tcase_add_test(fixtures, psi_fixtures);
  tcase_add_test(fixtures, blank_lines_skipped);
  suite_add_tcase(s, fixtures);

  TCase* tables = tcase_create("tables");
  tcase_add_loop_test(tables, cpu_list_table, 0, aqtest::count(kCpuLists));
  tcase_add_test(tables, cpu_list_large_range_is_cheap);
  tcase_add_loop_test(tables, cgroup_value_table, 0, aqtest::count(kValues));
  suite_add_tcase(s, tables);

  TCase* numbers = tcase_create("parse_u64");
  tcase_add_loop_test(numbers, parse_u64_table, 0, aqtest::count(kU64Cases));
  suite_add_tcase(s, numbers);

  TCase* malformed = tcase_create("malformed");
  tcase_add_loop_test(malformed, malformed_table, 0, static_cast<int>(bad_cases().size()));
  tcase_add_test(malformed, malformed_table_is_large_enough);
  suite_add_tcase(s, malformed);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(proc_parse_suite());
}
