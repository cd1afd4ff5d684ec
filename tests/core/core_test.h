// Shared helpers for the core's Check suites: fixture paths and the runner.
// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <check.h>
// Check's deprecated fail() macro breaks std::basic_ios::fail() in any
// standard header included after it.
#undef fail

namespace aqtest {

// AQ_FIXTURES (set by meson) wins, so the binaries also run from elsewhere.
inline std::string fixtures_dir() {
  if (const char* env = std::getenv("AQ_FIXTURES"))
    return env;
  return AQ_FIXTURES_DIR;
}

// The whole file in `out`; false when it cannot be read.
inline bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return true;
}

// A fixture's text, failing the running test when it is missing.
inline std::string read_fixture(const std::string& name) {
  std::string text;
  const std::string path = fixtures_dir() + "/" + name;
  ck_assert_msg(read_file(path, text), "cannot read fixture %s", path.c_str());
  return text;
}

// For tables built outside a test: an unreadable fixture gives "", and the
// cases built on it then fail with their own names.
inline std::string fixture_or_empty(const std::string& name) {
  std::string text;
  read_file(fixtures_dir() + "/" + name, text);
  return text;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Rows in a case table, for tcase_add_loop_test.
template <class T, size_t N>
constexpr int count(const T (&)[N]) {
  return static_cast<int>(N);
}

// Runs the suite; CK_VERBOSITY and CK_FORK from the environment apply.
inline int run_suite(Suite* suite) {
  SRunner* runner = srunner_create(suite);
  srunner_run_all(runner, CK_ENV);
  const int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace aqtest
