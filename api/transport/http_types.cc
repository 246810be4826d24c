#include "api/transport/http_types.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace airlock::api {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equals_ignoring_case(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::string_view HttpRequest::path() const {
  std::string_view view(target);
  return view.substr(0, view.find('?'));
}

bool lists_media_type(std::string_view header_value, std::string_view media_type) {
  while (!header_value.empty()) {
    size_t comma = header_value.find(',');
    std::string_view item = header_value.substr(0, comma);
    item = trim(item.substr(0, item.find(';')));
    if (equals_ignoring_case(item, media_type)) return true;
    if (comma == std::string_view::npos) break;
    header_value.remove_prefix(comma + 1);
  }
  return false;
}

namespace {

// One entry of an Accept header: its media range, its q (1 when absent) and its position.
struct AcceptEntry {
  std::string_view range;
  double quality = 1.0;
  size_t position = 0;
};

std::vector<AcceptEntry> accept_entries(std::string_view header_value) {
  std::vector<AcceptEntry> entries;
  size_t position = 0;
  while (!header_value.empty()) {
    size_t comma = header_value.find(',');
    std::string_view item = header_value.substr(0, comma);
    AcceptEntry entry{trim(item.substr(0, item.find(';'))), 1.0, position++};
    for (size_t semi = item.find(';'); semi != std::string_view::npos;) {
      size_t next = item.find(';', semi + 1);
      std::string_view parameter = trim(item.substr(semi + 1, next - semi - 1));
      if (parameter.size() > 2 && (parameter[0] == 'q' || parameter[0] == 'Q') &&
          parameter[1] == '=') {
        // RFC 9110: 0 to 1 with at most three decimals; anything else counts as 1.
        std::string digits(parameter.substr(2, 5));
        char* end = nullptr;
        double q = std::strtod(digits.c_str(), &end);
        if (end != digits.c_str() && q >= 0.0 && q <= 1.0) entry.quality = q;
      }
      semi = next;
    }
    if (!entry.range.empty()) entries.push_back(entry);
    if (comma == std::string_view::npos) break;
    header_value.remove_prefix(comma + 1);
  }
  return entries;
}

// The entry that decides for media_type: an exact match before type/*, before */*.
std::optional<AcceptEntry> best_match(const std::vector<AcceptEntry>& entries,
                                      std::string_view media_type) {
  std::optional<AcceptEntry> best;
  int best_specificity = -1;
  const std::string_view type = media_type.substr(0, media_type.find('/'));
  for (const AcceptEntry& entry : entries) {
    int specificity = -1;
    if (equals_ignoring_case(entry.range, media_type)) {
      specificity = 2;
    } else if (entry.range.size() == type.size() + 2 && entry.range.ends_with("/*") &&
               equals_ignoring_case(entry.range.substr(0, type.size()), type)) {
      specificity = 1;
    } else if (entry.range == "*/*") {
      specificity = 0;
    }
    if (specificity > best_specificity) {
      best = entry;
      best_specificity = specificity;
    }
  }
  return best;
}

}  // namespace

bool prefers_event_stream(std::string_view accept) {
  const std::vector<AcceptEntry> entries = accept_entries(accept);
  std::optional<AcceptEntry> stream;
  for (const AcceptEntry& entry : entries) {
    // Only a stream asked for by name: "*/*" takes JSON, as a client that accepts anything does.
    if (equals_ignoring_case(entry.range, kEventStreamType)) stream = entry;
  }
  if (!stream || stream->quality <= 0.0) return false;
  std::optional<AcceptEntry> json = best_match(entries, kJsonType);
  if (!json || json->quality <= 0.0) return true;
  if (stream->quality != json->quality) return stream->quality > json->quality;
  return stream->position < json->position;  // equally welcome: the one the client named first
}

}  // namespace airlock::api
