#include "policies/errors.h"

#include <yaml-cpp/mark.h>

#include <algorithm>

namespace airlock::policies {

std::string PolicyError::format() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

void ErrorList::add(const YAML::Mark& mark, std::string message) {
  if (mark.is_null() || mark.line < 0) {
    push(0, 0, std::move(message));
  } else {
    push(mark.line + 1, mark.column + 1, std::move(message));
  }
}

void ErrorList::add_file_error(std::string message) {
  push(0, 0, std::move(message));
}

void ErrorList::push(int line, int column, std::string message) {
  if (errors_.size() < kMaxErrorsPerFile) {
    errors_.push_back({file_, line, column, std::move(message)});
    return;
  }
  // One more entry past the cap, rewritten as the count grows.
  ++omitted_;
  std::string summary = "and " + std::to_string(omitted_) + " more error" +
                        (omitted_ == 1 ? "" : "s") + " not shown; fix the ones above first";
  if (omitted_ == 1) {
    errors_.push_back({file_, kAfterAllLines, 0, std::move(summary)});
  } else {
    errors_.back().message = std::move(summary);
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: like Levenshtein, and a swap of two neighbours counts as one edit,
  // because "mkdri" for "mkdir" is one slip of the fingers.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.size() > kMaxSuggestedWord) return "";
  const size_t allowed = std::max<size_t>(1, word.size() / 3);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const auto& candidate : candidates) {
    // The distance is at least the difference in length.
    const size_t longer = std::max(word.size(), candidate.size());
    const size_t shorter = std::min(word.size(), candidate.size());
    if (longer - shorter >= best_distance) continue;
    const size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string suggestion = nearest(word, candidates);
  if (suggestion.empty()) return "";
  return " — did you mean '" + suggestion + "'?";
}

}  // namespace airlock::policies
