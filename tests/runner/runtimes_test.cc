// The runtimes file: what a runtime adds to its sandboxes (environment, support folder, warm-up).
#include "runner/runtimes.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

namespace airlock::runner {
namespace {

// Writes `text` to a temporary runtimes file and loads it.
sandbox::Expected<RuntimeTable> load_text(const std::string& text) {
  char path[] = "/tmp/airlock-runtimes-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << text;
  auto table = load_runtimes(path);
  std::remove(path);
  return table;
}

}  // namespace

TEST_CASE("a runtime's environment, support folder and warm-up are read") {
  auto table = load_text(R"(
python:
  source: main.py
  run: [/usr/bin/python3, main.py]
  support: python
  environment: {MPLBACKEND: Agg, PYTHONPATH: /opt/airlock/python}
  warm_up: "import json\n"
)");
  INFO((table ? "" : table.error().message()));
  REQUIRE(table);
  const Runtime& python = table.value().at("python");
  CHECK(python.support == "python");
  CHECK(python.environment.at("MPLBACKEND") == "Agg");
  CHECK(python.warm_up == "import json\n");
}

TEST_CASE("a support folder is a plain name inside the drivers directory") {
  for (const char* bad : {"../etc", "a/b", ".hidden"}) {
    auto table =
        load_text(std::string("x:\n  source: m\n  run: [/bin/true]\n  support: ") + bad + "\n");
    REQUIRE_FALSE(table);
    CHECK_THAT(table.error().message(),
               Catch::Contains("must name a folder of the drivers directory"));
  }
}

TEST_CASE("a runtime's variables go under the policy's, and its support folder is copied in") {
  Runtime python;
  python.environment = {{"MPLBACKEND", "Agg"}, {"HOME", "/nowhere"}};
  python.support = "python";
  sandbox::Spec spec;
  spec.env = {"HOME=/work"};  // the policy's
  add_runtime_setup(spec, python, "/usr/lib/airlock/drivers");
  CHECK(spec.env == std::vector<std::string>{"HOME=/work", "MPLBACKEND=Agg"});
  REQUIRE(spec.filesystem.binds.size() == 1);
  const sandbox::BindMount& bind = spec.filesystem.binds.front();
  CHECK(bind.host_path == "/usr/lib/airlock/drivers/python");
  CHECK(bind.sandbox_path == "/opt/airlock/python");
  CHECK(bind.copy);
  CHECK_FALSE(bind.writable);

  SECTION("a driver's sandbox, which has the whole drivers directory, gets no second copy") {
    sandbox::Spec driver;
    driver.filesystem.binds.push_back(
        {"/usr/lib/airlock/drivers", kSupportSandboxDir, false, false, true});
    add_runtime_setup(driver, python, "/usr/lib/airlock/drivers");
    CHECK(driver.filesystem.binds.size() == 1);
  }
  SECTION("without a drivers directory there is nothing to copy") {
    sandbox::Spec bare;
    add_runtime_setup(bare, python, "");
    CHECK(bare.filesystem.binds.empty());
  }
}

}  // namespace airlock::runner

namespace airlock::runner {

TEST_CASE("a runtimes file that is a directory or a device is an error, not an abort") {
  auto directory = load_runtimes("/tmp");
  REQUIRE_FALSE(directory);
  CHECK(directory.error().message() ==
        "cannot read runtimes file /tmp: \"/tmp\" is a directory, not a regular file");
  auto device = load_runtimes("/dev/zero");
  REQUIRE_FALSE(device);
  CHECK(device.error().message() ==
        "cannot read runtimes file /dev/zero: \"/dev/zero\" is a device, not a regular file");
}

}  // namespace airlock::runner
