// Model references, the registry, quant matching, origins and the quant choice from a listing.
#include <gtest/gtest.h>

#include "hub/cache.h"
#include "hub/http.h"
#include "hub/model_ref.h"
#include "hub/pull.h"

namespace fabula::hub {
namespace {

Registry test_registry() {
  RegistryEntry e;
  e.name = "vn26b";
  e.repo = "build-small-hackathon/Gemma-26B-A4B-VisualNovel-GGUF";
  e.default_quant = "Q4_K_M";
  e.files = {{"Q4_K_M", "vn26b-experts-v1-Q4_K_M.gguf"}, {"Q8_0", "vn26b-experts-v1-Q8_0.gguf"}};
  e.profile = "vn26b";
  return {e};
}

TEST(ModelRef, RegistryNamesPickTheirFiles) {
  auto r = parse_model_ref("vn26b", test_registry());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->repo, "build-small-hackathon/Gemma-26B-A4B-VisualNovel-GGUF");
  EXPECT_EQ(r->file, "vn26b-experts-v1-Q4_K_M.gguf");
  EXPECT_EQ(r->profile, "vn26b");
  EXPECT_EQ(r->display(), "vn26b");
  auto q8 = parse_model_ref("vn26b:q8_0", test_registry());
  ASSERT_TRUE(q8.ok());
  EXPECT_EQ(q8->file, "vn26b-experts-v1-Q8_0.gguf");
  EXPECT_EQ(q8->display(), "vn26b:Q8_0");
}

TEST(ModelRef, RepoFormsAndErrors) {
  auto a = parse_model_ref("owner/repo:Q4_K_M", {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->repo, "owner/repo");
  EXPECT_EQ(a->quant, "Q4_K_M");
  EXPECT_EQ(a->file, "");
  auto b = parse_model_ref("owner/repo/sub/file-Q8_0.gguf", {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->file, "sub/file-Q8_0.gguf");
  // The registry lends its profile to the same repo named directly.
  auto c = parse_model_ref("build-small-hackathon/Gemma-26B-A4B-VisualNovel-GGUF:Q8_0", test_registry());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->profile, "vn26b");
  for (const char* bad : {"", "owner/", "/repo", "own er/repo", "owner/repo:", "owner/repo/../x.gguf",
                          "owner/repo/f.gguf:Q8_0", "unknown"}) {
    auto r = parse_model_ref(bad, test_registry());
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_NE(parse_model_ref("unknown", test_registry()).error().message.find("known: vn26b"), std::string::npos);
}

TEST(ModelRef, PathsAreNotReferences) {
  EXPECT_TRUE(looks_like_path("/tmp/x.gguf"));
  EXPECT_TRUE(looks_like_path("./x.gguf"));
  EXPECT_TRUE(looks_like_path("models/x.gguf"));
  EXPECT_TRUE(looks_like_path("x.gguf"));
  EXPECT_FALSE(looks_like_path("owner/repo/x.gguf"));
  EXPECT_FALSE(looks_like_path("vn26b"));
  EXPECT_FALSE(looks_like_path("owner/repo:Q8_0"));
}

TEST(ModelRef, TheProjectRegistryLoads) {
  auto r = load_registry_file(std::string(FABULA_SOURCE_DIR) + "/models/registry.json");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const RegistryEntry* e = find_registry_entry(*r, "vn26b");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->repo, "build-small-hackathon/Gemma-26B-A4B-VisualNovel-GGUF");
  EXPECT_EQ(e->files.at("Q4_K_M"), "vn26b-experts-v1-Q4_K_M.gguf");
  EXPECT_EQ(e->files.at("Q8_0"), "vn26b-experts-v1-Q8_0.gguf");
  EXPECT_EQ(e->profile, "vn26b");
}

TEST(QuantMatch, TokensNotSubstrings) {
  EXPECT_TRUE(file_has_quant("vn26b-experts-v1-Q4_K_M.gguf", "Q4_K_M"));
  EXPECT_TRUE(file_has_quant("dir/model.Q8_0-00001-of-00002.gguf", "q8_0"));
  EXPECT_FALSE(file_has_quant("vn26b-experts-v1-Q4_K_M.gguf", "Q4_K"));
  EXPECT_FALSE(file_has_quant("model-IQ4_XS.gguf", "Q4_XS"));
  EXPECT_EQ(quant_of_file("vn26b-experts-v1-Q8_0.gguf"), "Q8_0");
  EXPECT_EQ(quant_of_file("model-bf16.gguf"), "BF16");
  EXPECT_EQ(quant_of_file("model.gguf"), "");
}

TEST(Origins, SameOriginIsSchemeHostAndPort) {
  EXPECT_EQ(url_origin("https://huggingface.co/a/b/resolve/main/f"), "https://huggingface.co");
  EXPECT_EQ(url_origin("https://huggingface.co:443/x"), "https://huggingface.co");
  EXPECT_EQ(url_origin("HTTP://Host:8080/x?y"), "http://host:8080");
  EXPECT_NE(url_origin("http://127.0.0.1:9/x"), url_origin("http://localhost:9/x"));
  EXPECT_EQ(url_origin("https://user:pw@host/x"), "https://host");
  EXPECT_EQ(resolve_location("https://hub/a/b?c", "/api/x"), "https://hub/api/x");
  EXPECT_EQ(resolve_location("https://hub/a/b", "https://cdn/x"), "https://cdn/x");
  EXPECT_EQ(resolve_location("https://hub/a/b", "c"), "https://hub/a/c");
}

TEST(ChooseFiles, PicksTheQuantAndEverySplitPart) {
  std::vector<RepoFile> listing = {{"README.md", 1, ""},
                                   {"m-Q4_K_M.gguf", 10, ""},
                                   {"m-Q8_0-00001-of-00002.gguf", 10, ""},
                                   {"m-Q8_0-00002-of-00002.gguf", 10, ""},
                                   {"mmproj-m-F16.gguf", 10, ""}};
  ModelRef ref;
  ref.repo = "o/r";
  auto def = choose_files(ref, listing);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(*def, std::vector<std::string>{"m-Q4_K_M.gguf"});
  ref.quant = "Q8_0";
  auto q8 = choose_files(ref, listing);
  ASSERT_TRUE(q8.ok());
  EXPECT_EQ(*q8, (std::vector<std::string>{"m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"}));
  ref.quant = "Q6_K";
  auto none = choose_files(ref, listing);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("it has: Q4_K_M, Q8_0"), std::string::npos) << none.error().message;
  listing[1].path = "m-Q6_K.gguf";  // no Q4_K_M and two models: the user must choose
  ref.quant = "";
  auto ambiguous = choose_files(ref, listing);
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.error().message.find("o/r:QUANT"), std::string::npos);
  listing.erase(listing.begin() + 1);  // one model left: it is the default
  auto only = choose_files(ref, listing);
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->size(), 2u);
  listing.erase(listing.begin() + 2);  // a split model missing a part
  ref.quant = "Q8_0";
  auto missing = choose_files(ref, listing);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("m-Q8_0-00002-of-00002.gguf is missing"), std::string::npos);
}


// Outside JSON (the Hub's listing, a registry file, a cache manifest) with a wrongly typed field is an error naming
// the field, never an exception.
TEST(HubJson, ListingReadsFilesAndLfsAndNamesABadField) {
  auto ok = parse_repo_listing(
      R"([{"type":"directory","path":"d"},
          {"type":"file","path":"a.gguf","size":7,"lfs":{"oid":"abc","size":99}},
          {"path":"b.txt","size":3}])",
      "listing");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].path, "a.gguf");
  EXPECT_EQ((*ok)[0].size, 99u);  // the LFS size wins over the pointer's
  EXPECT_EQ((*ok)[0].sha256, "abc");
  EXPECT_EQ((*ok)[1].size, 3u);
  EXPECT_EQ((*ok)[1].sha256, "");

  auto bad_size = parse_repo_listing(R"([{"path":"a.gguf","size":"big"}])", "listing");
  ASSERT_FALSE(bad_size.ok());
  EXPECT_NE(bad_size.error().message.find("[0].size"), std::string::npos) << bad_size.error().message;
  auto bad_oid = parse_repo_listing(R"([{"path":"a.gguf","lfs":{"oid":5}}])", "listing");
  ASSERT_FALSE(bad_oid.ok());
  EXPECT_NE(bad_oid.error().message.find("lfs.oid"), std::string::npos) << bad_oid.error().message;
  EXPECT_FALSE(parse_repo_listing(R"({"path":"a"})", "listing").ok());  // not an array
  EXPECT_FALSE(parse_repo_listing("[{", "listing").ok());
}

TEST(HubJson, RegistryErrorsNameTheField) {
  auto ok = parse_registry(R"({"models":{"m":{"repo":"o/r","files":{"q8_0":"m.gguf"},"profile":"p"}}})", "reg");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ((*ok)[0].default_quant, "Q8_0");  // the only file is the default, upper-cased
  EXPECT_EQ((*ok)[0].files.at("Q8_0"), "m.gguf");
  auto bad_default = parse_registry(R"({"models":{"m":{"repo":"o/r","files":{"Q8_0":"m.gguf"},"default":8}}})", "reg");
  ASSERT_FALSE(bad_default.ok());
  EXPECT_NE(bad_default.error().message.find("models.m.default"), std::string::npos) << bad_default.error().message;
  auto unknown_default =
      parse_registry(R"({"models":{"m":{"repo":"o/r","files":{"Q8_0":"m.gguf"},"default":"Q4_K_M"}}})", "reg");
  ASSERT_FALSE(unknown_default.ok());
  EXPECT_NE(unknown_default.error().message.find("not in files"), std::string::npos);
  auto no_files = parse_registry(R"({"models":{"m":{"repo":"o/r","files":{}}}})", "reg");
  ASSERT_FALSE(no_files.ok());
  EXPECT_NE(no_files.error().message.find("models.m.files"), std::string::npos) << no_files.error().message;
  EXPECT_FALSE(parse_registry(R"({"models":{"m":{"repo":1,"files":{"Q8_0":"m"}}}})", "reg").ok());
}

TEST(HubJson, ManifestErrorsNameTheField) {
  auto ok = parse_manifest(R"({"repo":"o/r","files":[{"name":"m.gguf","size":5,"verified":true}]})", "m.json");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ(ok->repo, "o/r");
  ASSERT_EQ(ok->files.size(), 1u);
  EXPECT_EQ(ok->files[0].size, 5u);
  EXPECT_TRUE(ok->files[0].verified);
  auto bad = parse_manifest(R"({"files":[{"name":"m.gguf","verified":"yes"}]})", "m.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("files[0].verified"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(parse_manifest(R"({"files":[]})", "m.json").ok());
}

}  // namespace
}  // namespace fabula::hub
