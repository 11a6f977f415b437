// Errors as values.
//
// Every stage reports failures by returning an `Error` (or an `Expected<T>` holding either a value
// or an Error) rather than throwing: a message that already names the file, the layer and the
// shapes involved, ready to print as `fgc: error: <message>`. `assert` is reserved for internal
// invariants. The public functional API converts Errors into `fgc::Exception` at its boundary.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace fgc {

class Error {
public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  template <typename... Args>
  static Error format(fmt::format_string<Args...> f, Args &&...args) {
    return Error(fmt::format(f, std::forward<Args>(args)...));
  }
  const std::string &message() const { return message_; }
  // Prefixes the message with context, e.g. the file name: "model.pbtxt: <message>".
  Error withContext(const std::string &context) const {
    return Error(context.empty() ? message_ : context + ": " + message_);
  }

private:
  std::string message_;
};

// Either a T or an Error. Check with `if (!e)`, read with `*e` / `e->`, take the error with
// `e.error()`.
template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}
  explicit operator bool() const { return std::holds_alternative<T>(v_); }
  T &operator*() { return std::get<T>(v_); }
  const T &operator*() const { return std::get<T>(v_); }
  T *operator->() { return &std::get<T>(v_); }
  const T *operator->() const { return &std::get<T>(v_); }
  const Error &error() const { return std::get<Error>(v_); }
  T take() { return std::move(std::get<T>(v_)); }

private:
  std::variant<T, Error> v_;
};

// A success-or-Error result for operations that produce nothing.
class [[nodiscard]] Status {
public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}
  static Status ok() { return Status(); }
  explicit operator bool() const { return !error_.has_value(); }
  const Error &error() const { return *error_; }

private:
  std::optional<Error> error_;
};

// What the public C++ API throws (Keras raises ValueError at layer-call time; so does fgc).
class Exception : public std::runtime_error {
public:
  explicit Exception(const Error &error) : std::runtime_error(error.message()) {}
};

} // namespace fgc

// Propagates an error from an Expected/Status expression out of the enclosing function.
#define FGC_TRY(expr)                                                                              \
  do {                                                                                             \
    auto &&fgcTryResult_ = (expr);                                                                 \
    if (!fgcTryResult_)                                                                            \
      return fgcTryResult_.error();                                                                \
  } while (0)
