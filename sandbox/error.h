// Setup errors: something airlock itself failed to do, with the operation and errno that failed.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace airlock::sandbox {

// A failed setup step, e.g. `mount("/usr"): EPERM`. Never used for what the sandboxed program did.
struct SetupError {
  std::string operation;  // e.g. `mount("/usr")`
  int error_number = 0;   // errno, or 0 when the failure has no errno

  // "operation: ENAME (description)" or just "operation" when there is no errno.
  std::string message() const;
};

// Makes a SetupError from the current errno.
SetupError errno_error(std::string operation);

// The symbolic name of an errno value ("EPERM"), or "errno N" when unknown.
std::string errno_name(int error_number);

// Either a value or a SetupError. A small stand-in for C++23 std::expected.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}
  Expected(SetupError error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const T& value() const& { return std::get<0>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const SetupError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, SetupError> state_;
};

// Expected<void>: success or a SetupError.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(SetupError error) : error_(std::move(error)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const SetupError& error() const { return error_; }

 private:
  SetupError error_;
  bool failed_ = false;
};

}  // namespace airlock::sandbox
