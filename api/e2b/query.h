// URL pieces E2B's SDKs send: query parameters (the file path of /files, the list filters) and
// %-escapes, decoded strictly (a malformed escape or a NUL is refused, never passed on).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::api::e2b {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in a form); nullopt for a
// malformed escape or a NUL byte.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

// The decoded value of the first query parameter `name` of a target ("/files?path=a%20b");
// nullopt when absent. `malformed` is set when it is present but cannot be decoded.
std::optional<std::string> query_param(std::string_view target, std::string_view name,
                                       bool& malformed);

}  // namespace airlock::api::e2b
