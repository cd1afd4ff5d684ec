/* A procfs tree for adaptivequeue's proc-root, shared by the demo and the
 * replay benchmark: a temporary directory holding a stat and a meminfo that
 * the caller writes. Each write replaces its file by a rename, so the
 * element's sampler never reads half a file.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string>

namespace aqfixture {

class ProcFixture {
 public:
  ProcFixture() = default;
  ProcFixture(const ProcFixture&) = delete;
  ProcFixture& operator=(const ProcFixture&) = delete;
  /* Removes the files and the directory. */
  ~ProcFixture();

  bool create(std::string& error);
  /* The meminfo of a 256 MB board with mem_percent of it in use. */
  bool write_meminfo(double mem_percent);
  bool write_stat(const std::string& text);
  /* Copies this machine's /proc/stat. */
  bool mirror_stat();
  const std::string& root() const { return root_; }

 private:
  bool replace(const std::string& name, const std::string& text);
  std::string root_;
};

}  // namespace aqfixture
