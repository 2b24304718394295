// What one HTTP connection may cost the server: time to send its headers, idle time, sizes, connection counts.
#pragma once

#include <cstddef>

namespace fabula::server {

struct HttpLimits {
  int header_timeout_s = 10;      // the request line and headers must arrive within this (slow-header clients)
  int idle_timeout_s = 5;         // a kept-alive connection with no new request is closed after this
  int read_timeout_s = 30;        // a request body that stalls this long ends the connection
  int write_timeout_s = 30;       // a client that takes nothing of a reply for this long is dropped
  size_t max_header_bytes = 64 * 1024;  // request line + headers (431 above)
  size_t max_body = 1 << 20;            // request body (413 above; never read past the limit)
  int max_connections = 512;            // open connections in total (503 above)
  int max_client_connections = 64;      // open connections from one address (429 above)
  int max_requests_per_connection = 100;
};

}  // namespace fabula::server
