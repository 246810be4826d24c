// Structured logs: one JSON object a line, so that a log pipeline can filter by execution id,
// status or client without parsing prose.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

namespace airlock::api {

// One key and its value, already rendered as JSON.
struct LogField {
  LogField(std::string_view key, std::string_view value);
  LogField(std::string_view key, const char* value) : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, const std::string& value)
      : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, int64_t value);
  LogField(std::string_view key, uint64_t value);
  LogField(std::string_view key, int value) : LogField(key, int64_t{value}) {}
  LogField(std::string_view key, unsigned value) : LogField(key, uint64_t{value}) {}
  LogField(std::string_view key, long long value) : LogField(key, int64_t(value)) {}
  LogField(std::string_view key, unsigned long long value) : LogField(key, uint64_t(value)) {}
  LogField(std::string_view key, double value);
  LogField(std::string_view key, bool value);

  std::string key;
  std::string json_value;
};

enum class LogLevel { debug, info, warning, error };

class Logger {
 public:
  explicit Logger(std::ostream& out) : out_(out) {}

  // Writes {"time":...,"level":...,"msg":...,<fields>} and a newline, atomically per line.
  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void info(std::string_view message, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::info, message, fields);
  }
  void warning(std::string_view message, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::warning, message, fields);
  }
  void error(std::string_view message, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::error, message, fields);
  }

 private:
  std::mutex mutex_;
  std::ostream& out_;
};

}  // namespace airlock::api
