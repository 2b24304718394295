// `fabula serve`: the llama-server-compatible HTTP API over the in-process model (see src/server/server.h).
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "base/log.h"
#include "command.h"
#include "model_args.h"
#include "server/http_policy.h"
#include "server/server.h"

FABULA_COMMAND(serve, "Serve the model over HTTP (llama-server API: /completion, /v1/chat/completions, ...)") {
  auto o = std::make_shared<fabula::server::ServerOptions>();
  auto max_body = std::make_shared<int64_t>(1 << 20);
  cli.add_option("-m,--model", o->model_path, "GGUF model: a path or a pulled model (vn26b, owner/repo:QUANT)");
  cli.add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cli.add_option("--port", o->port, "Port (0: any free port, printed)")->capture_default_str();
  cli.add_option("--parallel,--np", o->n_parallel, "Slots (concurrent requests)")->capture_default_str()->check(CLI::Range(1, 64));
  cli.add_option("-b,--batch-size", o->n_batch,
                 "Tokens per forward step, all slots together (decoding slots first, then prompt chunks; default: "
                 "--ubatch-size plus one per slot, so a whole chunk fits beside every generating request)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cli.add_option("--ubatch-size", o->n_ubatch,
                 "Most tokens of one slot in one step; a longer prompt takes several, and each holds the other "
                 "slots back for its step (default: 1536 with --parallel 1, a first beat in one step as in "
                 "`fabula run`; 512 with more: 85% of that prompt speed on the 26B, and each chunk holds the "
                 "others back a third as long)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cli.add_option("-c,--ctx", o->n_ctx, "Context size per slot")->capture_default_str()->check(CLI::Range(16, 1 << 20));
  cli.add_option("--api-key", o->api_key, "Require this key (Authorization: Bearer K) on every route but /health")
      ->envname("LLAMA_API_KEY");
  cli.add_option("--cors-origin", o->cors_origins,
                 "Let web pages at this origin call the API (repeatable; '*' for any page, only with --api-key)");
  cli.add_option("--allow-host", o->allowed_hosts,
                 "Accept requests for this host name too (repeatable; others get 421 on a loopback address)");
  cli.add_option("--ssl-cert", o->ssl_cert, "Serve HTTPS with this PEM certificate chain (with --ssl-key)");
  cli.add_option("--ssl-key", o->ssl_key, "The PEM private key of --ssl-cert");
  cli.add_option("-t,--threads", o->n_threads, "Inference threads (default: physical cores)");
  fabula::app::add_cache_type_flags(cli, o->cache_type);
  cli.add_option("--max-body", *max_body, "Largest request body in bytes (413 above)")->capture_default_str()->check(CLI::Range(int64_t{1024}, int64_t{1} << 30));
  cli.add_option("--timeout", o->timeout_s, "Request time limit in seconds (generation stops, stop_type limit)")->capture_default_str()->check(CLI::Range(1, 86400));
  cli.add_option("--read-timeout", o->read_timeout_s, "Socket read/write timeout in seconds")->capture_default_str()->check(CLI::Range(1, 3600));
  cli.add_option("--header-timeout", o->header_timeout_s, "Seconds a client has to send its request headers")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  cli.add_option("--max-connections", o->max_connections, "Open connections in total (503 above)")
      ->capture_default_str()->check(CLI::Range(1, 65536));
  cli.add_option("--max-client-connections", o->max_client_connections, "Open connections from one address (429 above)")
      ->capture_default_str()->check(CLI::Range(1, 65536));
  cli.add_option("--story", o->story, "Story whose manifest \"vn_protocol\" requests follow (default: the built-in sakuragaoka)");
  cli.add_option("--alias", o->alias, "Model name in responses (default: the file name)");
  return [o, max_body] {
    using namespace fabula;
    auto choice = app::resolve_model_arg(o->model_path);
    if (!choice) return app::report_error(choice.error());
    o->model_path = choice->path;
    app::warn_if_model_would_page(*choice, o->n_ctx * o->n_parallel, o->cache_type);
    o->max_body = static_cast<size_t>(*max_body);
    // SIGINT/SIGTERM are taken by a watcher thread (blocked here so every later thread inherits the mask).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    server::Server srv(*o);
    auto port = srv.start();
    if (!port.ok()) return app::report_error(port.error());
    std::printf("fabula serve: listening on %s://%s:%d (loading %s)\n", o->ssl_cert.empty() ? "http" : "https",
                o->host.c_str(), *port, o->model_path.c_str());
    if (!server::is_loopback_host(o->host) && o->api_key.empty())
      FABULA_LOG_WARN("serve: listening on {} without --api-key: anyone who can reach this address can use the model",
                      o->host);
    std::fflush(stdout);
    std::thread watcher([&srv, set] {
      int sig = 0;
      sigwait(&set, &sig);
      if (sig != 0) srv.stop();
    });
    Status ready = srv.wait_ready();
    if (!ready.ok()) {
      pthread_kill(watcher.native_handle(), SIGTERM);
      watcher.join();
      return app::report_error(ready.error(), "check --model");
    }
    std::printf("fabula serve: model ready\n");
    std::fflush(stdout);
    srv.wait();
    srv.stop();
    pthread_kill(watcher.native_handle(), SIGTERM);  // wakes sigwait if the listener died on its own
    watcher.join();
    return 0;
  };
}
