#include "sandbox/error.h"

#include <cstring>

namespace airlock::sandbox {

std::string errno_name(int error_number) {
  const char* name = strerrorname_np(error_number);
  if (name == nullptr) return "errno " + std::to_string(error_number);
  return name;
}

std::string SetupError::message() const {
  if (error_number == 0) return operation;
  return operation + ": " + errno_name(error_number) + " (" + strerrordesc_np(error_number) + ")";
}

SetupError errno_error(std::string operation) { return SetupError{std::move(operation), errno}; }

}  // namespace airlock::sandbox
