#include "api/log.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "policies/audit_log.h"

namespace airlock::api {

LogField::LogField(std::string_view k, std::string_view value)
    : key(k), json_value(policies::json_string(value)) {}
LogField::LogField(std::string_view k, int64_t value) : key(k), json_value(std::to_string(value)) {}
LogField::LogField(std::string_view k, uint64_t value)
    : key(k), json_value(std::to_string(value)) {}
LogField::LogField(std::string_view k, bool value) : key(k), json_value(value ? "true" : "false") {}
LogField::LogField(std::string_view k, double value) : key(k) {
  if (!std::isfinite(value)) {
    json_value = "null";
    return;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  json_value = buffer;
}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  static constexpr const char* kLevelNames[] = {"debug", "info", "warning", "error"};
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm utc;
  gmtime_r(&seconds, &utc);
  char time_text[32];
  size_t length = std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(time_text + length, sizeof time_text - length, ".%03dZ",
                static_cast<int>(millis.count()));

  std::string line = "{\"time\":\"";
  line += time_text;
  line += "\",\"level\":\"";
  line += kLevelNames[static_cast<int>(level)];
  line += "\",\"msg\":";
  line += policies::json_string(message);
  for (const LogField& field : fields) {
    line += ',';
    line += policies::json_string(field.key);
    line += ':';
    line += field.json_value;
  }
  line += "}\n";
  std::lock_guard lock(mutex_);
  out_ << line << std::flush;
}

}  // namespace airlock::api
