// Atomic writes via temp file + fsync + rename (see AtomicFile.h).
#include "compiler/support/AtomicFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fgc {

Status writeFileAtomic(const std::string &path, std::string_view bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Error::format("{}: cannot write: {}", path, std::strerror(errno));
  const char *p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error::format("{}: write failed: {}", path, std::strerror(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::format("{}: write failed: {}", path, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::format("{}: cannot replace file: {}", path, std::strerror(err));
  }
  return Status::ok();
}

Status checkRegularFile(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Error::format("{}: cannot open: {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return Error::format("{}: is a directory, expected a file", path);
  if (!S_ISREG(st.st_mode))
    return Error::format("{}: not a regular file", path);
  return Status::ok();
}

Expected<std::string> readFile(const std::string &path) {
  FGC_TRY(checkRegularFile(path));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error::format("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return Error::format("{}: read failed", path);
  return ss.str();
}

} // namespace fgc
