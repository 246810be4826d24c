// The gate in front of protobuf's JSON parser: every JSON text a client sends is checked here
// first. protobuf 3.21's parser is lenient (it takes 'single-quoted' strings, bare keys and more)
// and spends time that grows faster than linearly with nesting, so a depth check that knew only
// standard JSON could be walked around; this one admits nothing but standard JSON.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class Descriptor;
}

namespace airlock::api::json {

// How deep JSON requests may nest arrays and objects; no request of the API needs more than a few.
inline constexpr size_t kMaxJsonDepth = 64;

// What makes `text` other than one standard JSON value (RFC 8259) nesting arrays and objects at
// most max_depth deep with no key twice in one object, and at which byte: "strings must be in
// double quotes, not single (at byte 7)". nullopt: the text is standard JSON. One pass.
//
// Keys are compared as they decode ("a" and "\u0061" are one key). With a schema, the text is
// read as that message and a field named twice by its two names ("runtime" and its JSON name
// "language") is a key given twice too: protobuf's parser would keep whichever came last. The
// objects open at any point may hold at most 100,000 keys together, and the text at most 500,000
// values (scalars, arrays and objects).
std::optional<std::string> syntax_problem(std::string_view text, size_t max_depth = kMaxJsonDepth,
                                          const google::protobuf::Descriptor* schema = nullptr);

}  // namespace airlock::api::json
