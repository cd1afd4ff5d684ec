/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc-fixture.h"

#include <glib.h>
#include <glib/gstdio.h>

#include <cstdio>
#include <sstream>

namespace aqfixture {

ProcFixture::~ProcFixture() {
  if (root_.empty())
    return;
  for (const char* name : {"stat", "stat.new", "meminfo", "meminfo.new"})
    g_unlink((root_ + "/" + name).c_str());
  g_rmdir(root_.c_str());
}

bool ProcFixture::create(std::string& error) {
  GError* err = nullptr;
  gchar* dir = g_dir_make_tmp("adaptivequeue-proc-XXXXXX", &err);
  if (!dir) {
    error = err->message;
    g_clear_error(&err);
    return false;
  }
  root_ = dir;
  g_free(dir);
  return true;
}

/* Written aside and renamed over the old file. No fsync: the files are
 * rewritten many times a second and never need to outlive the process. */
bool ProcFixture::replace(const std::string& name, const std::string& text) {
  const std::string path = root_ + "/" + name;
  const std::string tmp = path + ".new";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f)
    return false;
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !written)
    return false;
  return g_rename(tmp.c_str(), path.c_str()) == 0;
}

bool ProcFixture::write_meminfo(double mem_percent) {
  const guint64 total_kb = 262144;
  const guint64 available_kb = static_cast<guint64>(total_kb * (100.0 - mem_percent) / 100.0);
  std::ostringstream m;
  m << "MemTotal:       " << total_kb << " kB\n"
    << "MemFree:        " << available_kb / 2 << " kB\n"
    << "MemAvailable:   " << available_kb << " kB\n"
    << "Buffers:        " << 0 << " kB\n"
    << "Cached:         " << available_kb / 2 << " kB\n";
  return replace("meminfo", m.str());
}

bool ProcFixture::write_stat(const std::string& text) {
  return replace("stat", text);
}

bool ProcFixture::mirror_stat() {
  gchar* text = nullptr;
  gsize len = 0;
  if (!g_file_get_contents("/proc/stat", &text, &len, nullptr))
    return false;
  const bool ok = write_stat(std::string(text, len));
  g_free(text);
  return ok;
}

}  // namespace aqfixture
