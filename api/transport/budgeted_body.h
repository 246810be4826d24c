// A request body for Beast's parser whose memory is taken from the service's body budget as its
// bytes arrive (internal to api/transport/). Beast's string_body reserves a whole announced
// Content-Length at once; with it, a client that claims a large body and then sends nothing
// would hold that much of the budget. Here a body holds what it has received, at most doubled.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

#include "api/memory_budget.h"

namespace airlock::api {

// The first allocation of a body whose size was not announced (chunked).
inline constexpr uint64_t kFirstBodyAllocationBytes = 4096;

struct BudgetedBody {
  struct value_type {
    std::string text;
    MemoryBudget* budget = nullptr;  // set before the body is read; null: nothing is counted
    BudgetShare share;               // what text's capacity took from the budget
    bool over_budget = false;        // the budget had no room for the next bytes
  };

  static uint64_t size(const value_type& body) { return body.text.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<uint64_t>& length, boost::beast::error_code& ec) {
      announced_ = length;
      ec = {};
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      std::string& text = body_.text;
      const size_t bytes = boost::asio::buffer_size(buffers);
      if (bytes > text.max_size() - text.size()) {
        ec = boost::beast::http::error::buffer_overflow;
        return 0;
      }
      const uint64_t needed = text.size() + bytes;
      if (needed > text.capacity()) {
        // Doubling keeps the copies linear; an announced length caps it, so a body that
        // arrives whole holds exactly its size.
        uint64_t wanted = std::max<uint64_t>(
            needed, std::max<uint64_t>(kFirstBodyAllocationBytes, 2 * text.capacity()));
        if (announced_) wanted = std::max(needed, std::min(wanted, *announced_));
        if (body_.budget != nullptr && !body_.share.grow_to(*body_.budget, wanted)) {
          body_.over_budget = true;
          ec = boost::beast::http::error::buffer_overflow;
          return 0;
        }
        text.reserve(static_cast<size_t>(wanted));
      }
      ec = {};
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::const_buffer buffer = *it;
        text.append(static_cast<const char*>(buffer.data()), buffer.size());
      }
      return bytes;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    boost::optional<uint64_t> announced_;
  };
};

}  // namespace airlock::api
