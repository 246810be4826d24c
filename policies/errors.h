// Errors found in policy files, each pointing at file:line:column, and the "did you mean" helper
// that turns a typo into a suggestion.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Mark;
}

namespace airlock::policies {

// One problem in one policy file. line and column are 1-based; 0 means "the whole file", and
// kAfterAllLines a file-level note that sorts after the file's other errors.
inline constexpr int kAfterAllLines = -1;
struct PolicyError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  // "file:line:column: message", or "file: message" when there is no position.
  std::string format() const;
};

// The errors one file reports in full; past these, a count. A hostile or badly broken file could
// otherwise make the loader build (and suggest words for) hundreds of thousands of messages.
inline constexpr size_t kMaxErrorsPerFile = 20;

// Collects the errors of one load, so that a reviewer sees them at once: the first
// kMaxErrorsPerFile, then one "and N more" line.
class ErrorList {
 public:
  explicit ErrorList(std::string file) : file_(std::move(file)) {}

  // yaml-cpp marks are 0-based; they are stored 1-based. A null mark gives a file-level error.
  void add(const YAML::Mark& mark, std::string message);
  void add_file_error(std::string message);

  const std::string& file() const { return file_; }
  bool empty() const { return errors_.empty(); }
  // Every error added, shown or only counted.
  size_t count() const { return errors_.size() - (omitted_ > 0 ? 1 : 0) + omitted_; }
  // True once further errors are only counted: callers skip costly work such as suggestions.
  bool full() const { return errors_.size() >= kMaxErrorsPerFile; }
  std::vector<PolicyError>& errors() { return errors_; }

 private:
  void push(int line, int column, std::string message);

  std::string file_;
  std::vector<PolicyError> errors_;
  size_t omitted_ = 0;
};

// Edit distance between two words: insertions, deletions, substitutions and swaps of neighbours.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, when it is near enough to be a plausible typo (at most a third
// of the word's letters differ, and at least one); empty otherwise. Words longer than
// kMaxSuggestedWord get no suggestion, and candidates whose length alone rules them out are
// skipped, so the cost stays small whatever a file holds.
inline constexpr size_t kMaxSuggestedWord = 64;
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// " — did you mean 'x'?" when a candidate is near, "" otherwise. Appended to "unknown ..." errors.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace airlock::policies
