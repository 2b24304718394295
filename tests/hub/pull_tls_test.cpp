// One pull over TLS from a FakeHub whose certificate comes from a CA made here (openssl CLI): verified with
// the CA given through CURL_CA_BUNDLE, refused without it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "cli_util.h"
#include "fake_hub.h"

namespace fabula::hub_test {
namespace {

using test_support::ScratchDir;

bool make_ca_and_server_cert(const ScratchDir& d) {
  const std::string q = " >/dev/null 2>&1";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::string ext = d / "ext.cnf";
  {
    std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
  }
  return std::system(("openssl req -x509" + ec + " -keyout " + (d / "ca.key") + " -out " + (d / "ca.pem") +
                      " -days 2 -subj '/CN=fabula test CA'" + q).c_str()) == 0 &&
         std::system(("openssl req" + ec + " -keyout " + (d / "server.key") + " -out " + (d / "server.csr") +
                      " -subj '/CN=localhost'" + q).c_str()) == 0 &&
         std::system(("openssl x509 -req -in " + (d / "server.csr") + " -CA " + (d / "ca.pem") + " -CAkey " +
                      (d / "ca.key") + " -CAcreateserial -out " + (d / "server.pem") + " -days 2 -extfile " + ext + q)
                         .c_str()) == 0;
}

TEST(PullTls, PullsOverHttpsWithATestCa) {
  ScratchDir d("pull_tls");
  ASSERT_TRUE(make_ca_and_server_cert(d)) << "openssl CLI";
  ScratchDir models("pull_tls_models");
  const CliResult synth = run_fabula(models, "synth --shape gemma4-tiny-moe --type Q8_0 -o " + (models / "t-Q8_0.gguf"), {});
  ASSERT_EQ(synth.status, 0) << synth.all();

  FakeHub hub(d / "server.pem", d / "server.key");
  ASSERT_EQ(hub.endpoint().rfind("https://", 0), 0u);
  hub.add_file("test/tls-GGUF", "t-Q8_0.gguf", slurp(models / "t-Q8_0.gguf"));
  std::map<std::string, std::string> env = {{"FABULA_HOME", (d / "home")}, {"HF_ENDPOINT", hub.endpoint()},
                                            {"HF_TOKEN", ""}};

  const CliResult refused = run_fabula(d, "pull test/tls-GGUF", env);  // the system store does not know the CA
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.err.find("certificate"), std::string::npos) << refused.err;

  env["CURL_CA_BUNDLE"] = d / "ca.pem";
  const CliResult ok = run_fabula(d, "pull test/tls-GGUF", env);
  ASSERT_EQ(ok.status, 0) << ok.all();
  EXPECT_NE(ok.out.find("sha256 verified"), std::string::npos) << ok.out;
  EXPECT_EQ(slurp(d / "home/models/test/tls-GGUF/t-Q8_0.gguf"), slurp(models / "t-Q8_0.gguf"));
}

}  // namespace
}  // namespace fabula::hub_test
