// Ids of what lives on one replica: sessions ("se"), workspaces ("sb", E2B's sandboxes), and
// executions ("ex") whose results are kept for lookups.
//
// Behind a balancer, several replicas serve one API. An id carries the name of the replica that
// made it (its routing token) so the balancer can send every later request for it there
// (deploy/balancer/), and the process's incarnation, so a replica that restarted can tell "you
// knew me before I restarted; that state is gone" from "no such thing":
//
//   se_<24 hex>              one replica, no name set
//   se_<replica>_<24 hex>    replica "r1": se_r1_8c0d41f2a95e07b3c6d1e8f4
//
// The first 8 hex digits are the incarnation (random per process), the other 16 random per id.
#pragma once

#include <string>
#include <string_view>

namespace airlock::runner {

// A replica name: 1 to 32 of [a-z0-9-], starting with a letter or digit (a pod name fits).
bool is_replica_name(std::string_view name);

// `bytes` random bytes from the kernel, as lowercase hex.
std::string random_hex(size_t bytes);

// "ex_" + 24 hex digits, for runs that no balancer routes to (the CLI, warm-ups).
std::string new_execution_id();

// Where an id of this service's form came from, as far as this process can tell.
enum class IdOrigin {
  this_run,       // made by this process: look it up
  earlier_run,    // this replica's name, another incarnation: the replica restarted since
                  // (only named replicas tell; a lone service takes its ids as this run's)
  other_replica,  // another replica's name: the balancer sent it to the wrong place
  not_an_id,      // not of the form above
};

class IdMaker {
 public:
  IdMaker() : IdMaker(std::string()) {}
  // `replica` is empty or a valid replica name.
  explicit IdMaker(std::string replica);

  // A fresh id: kind is "se", "sb" or "ex" (two lowercase letters).
  std::string make(std::string_view kind) const;
  IdOrigin origin(std::string_view kind, std::string_view id) const;
  // Whether an id is of the form above, and the replica name it carries ("" for none).
  static bool well_formed(std::string_view kind, std::string_view id);
  static std::string_view replica_of(std::string_view kind, std::string_view id);

  const std::string& replica() const { return replica_; }

 private:
  std::string replica_;
  std::string incarnation_;  // 8 hex digits
};

}  // namespace airlock::runner
