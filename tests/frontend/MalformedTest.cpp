// The malformed-model table (tests/malformed/EXPECTED.tsv): every model in it must be rejected
// with one clear diagnostic, by the library (`loadGraph`) and by the command line (`fgc check`,
// exit status 1, exactly one `fgc: error: ` line on stderr, no crash, no hang).
#include "frontend/GraphBuilder.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace {

const std::string kMalformedDir = FGC_SOURCE_DIR "/tests/malformed";

struct Row {
  std::string file;
  std::vector<std::string> expected;
};

std::vector<Row> readTable() {
  std::ifstream in(kMalformedDir + "/EXPECTED.tsv");
  REQUIRE(in.good());
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    Row row;
    std::stringstream cells(line);
    std::string cell;
    std::getline(cells, row.file, '\t');
    while (std::getline(cells, cell, '\t'))
      row.expected.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

struct RunResult {
  bool exited = false;
  int status = -1;
  bool timedOut = false;
  std::string out, err;
};

// Runs `argv` with stdout and stderr captured, killing it after `timeout`.
RunResult run(const std::vector<std::string> &args, std::chrono::seconds timeout) {
  int outPipe[2], errPipe[2];
  REQUIRE(pipe2(outPipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(errPipe, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);
  std::vector<char *> argv;
  for (const auto &a : args)
    argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(outPipe[1]);
  close(errPipe[1]);
  REQUIRE(rc == 0);

  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  std::string *sinks[2] = {&r.out, &r.err};
  int open = 2;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timedOut = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) < 0)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
        continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto &f : fds)
    if (f.fd >= 0)
      close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exited = WIFEXITED(status);
  r.status = r.exited ? WEXITSTATUS(status) : -1;
  return r;
}

} // namespace

TEST_CASE("the malformed table covers every model in tests/malformed", "[malformed]") {
  auto rows = readTable();
  CHECK(rows.size() >= 20);
  std::set<std::string> listed;
  for (const auto &row : rows) {
    CHECK_FALSE(row.expected.empty());
    CHECK(listed.insert(row.file).second);
  }
  for (const auto &entry : std::filesystem::directory_iterator(kMalformedDir)) {
    std::string name = entry.path().filename().string();
    if (name == "EXPECTED.tsv" || name[0] == '.' || entry.path().extension() == ".fgcw")
      continue;
    INFO("file " << name);
    CHECK(listed.count(name) == 1);
  }
}

TEST_CASE("loadGraph rejects each malformed model with the expected diagnostic", "[malformed]") {
  for (const auto &row : readTable()) {
    DYNAMIC_SECTION(row.file) {
      std::string path = kMalformedDir + "/" + row.file;
      auto graph = fgc::loadGraph(path);
      REQUIRE_FALSE(graph);
      const std::string &message = graph.error().message();
      INFO("message: " << message);
      CHECK(message.find(path) != std::string::npos);
      CHECK(message.find('\n') == std::string::npos);
      for (const auto &expected : row.expected) {
        INFO("expected substring: " << expected);
        CHECK(message.find(expected) != std::string::npos);
      }
    }
  }
}

TEST_CASE("fgc check exits 1 with one error line for each malformed model", "[malformed][cli]") {
  const std::string fgcBinary = FGC_BINARY_DIR "/tools/fgc/fgc";
  REQUIRE(std::filesystem::exists(fgcBinary));
  for (const auto &row : readTable()) {
    DYNAMIC_SECTION(row.file) {
      std::string path = kMalformedDir + "/" + row.file;
      RunResult r = run({fgcBinary, "check", path}, std::chrono::seconds(60));
      INFO("stderr: " << r.err);
      REQUIRE_FALSE(r.timedOut);
      REQUIRE(r.exited);
      CHECK(r.status == 1);
      CHECK(r.out.empty());
      REQUIRE(r.err.rfind("fgc: error: ", 0) == 0);
      CHECK(r.err.find('\n') == r.err.size() - 1);
      CHECK(r.err.find(path) != std::string::npos);
      for (const auto &expected : row.expected)
        CHECK(r.err.find(expected) != std::string::npos);
    }
  }
}

TEST_CASE("fgc check on a file that does not exist names it and exits 1", "[malformed][cli]") {
  const std::string path = kMalformedDir + "/no_such_model.pbtxt";
  RunResult r = run({FGC_BINARY_DIR "/tools/fgc/fgc", "check", path}, std::chrono::seconds(60));
  INFO("stderr: " << r.err);
  REQUIRE(r.exited);
  CHECK(r.status == 1);
  CHECK(r.err.rfind("fgc: error: " + path, 0) == 0);
  CHECK(r.err.find('\n') == r.err.size() - 1);
}
