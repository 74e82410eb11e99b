// HTTPS download with libcurl: redirects followed, HTTP >= 400 is an error, a stalled
// transfer is aborted, progress is logged every few seconds, the result lands atomically.
#include "data/download.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <system_error>

#include "common/error.h"
#include "common/revision.h"

namespace mapgate {
namespace {

void curl_global_once() {
  static std::once_flag flag;
  static CURLcode rc = CURLE_OK;
  std::call_once(flag, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK)
    throw Error(std::string("libcurl: initialisation failed: ") + curl_easy_strerror(rc));
}

struct Transfer {
  std::FILE* file = nullptr;
  bool write_failed = false;
  const LogFn* log = nullptr;
  const std::string* url = nullptr;
  double interval_s = 5.0;
  std::chrono::steady_clock::time_point last_report;
};

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (std::fwrite(data, 1, n, t->file) != n) {
    t->write_failed = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return n;
}

std::string megabytes(curl_off_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1e6);
  return buf;
}

int on_progress(void* user, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - t->last_report).count() < t->interval_s) return 0;
  t->last_report = now;
  if (t->log && *t->log) {
    std::string msg = "downloading " + *t->url + ": " + megabytes(done);
    if (total > 0) msg += " / " + megabytes(total);
    (*t->log)(msg + " MB");
  }
  return 0;
}

struct CurlHandle {
  CURL* h = curl_easy_init();
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

}  // namespace

void download_to_file(const std::string& url, const std::string& path, const LogFn& log,
                      const DownloadOptions& options) {
  curl_global_once();
  const std::string part = path + ".part";
  std::error_code ec;
  std::filesystem::remove(part, ec);

  CurlHandle curl;
  if (!curl.h) throw Error("download " + mapgate::quoted(url) + ": curl_easy_init failed");
  Transfer t;
  t.file = std::fopen(part.c_str(), "wb");
  if (!t.file)
    throw Error("download " + mapgate::quoted(url) + ": cannot create " + mapgate::quoted(part));
  t.log = &log;
  t.url = &url;
  t.interval_s = options.progress_interval_s;
  t.last_report = std::chrono::steady_clock::now();

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl.h, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error
  curl_easy_setopt(curl.h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(curl.h, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes_per_s);
  curl_easy_setopt(curl.h, CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s);
  curl_easy_setopt(curl.h, CURLOPT_NOSIGNAL, 1L);
  const std::string user_agent = std::string("mapgate/") + source_revision() + " (libcurl)";
  curl_easy_setopt(curl.h, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl.h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl.h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl.h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl.h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl.h, CURLOPT_NOPROGRESS, 0L);

  auto start = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(curl.h);
  bool close_failed = std::fclose(t.file) != 0;
  if (rc != CURLE_OK || close_failed) {
    std::filesystem::remove(part, ec);
    std::string why;
    if (t.write_failed || close_failed)
      why = "writing " + mapgate::quoted(part) + " failed (disk full?)";
    else
      why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    throw Error("download " + mapgate::quoted(url) + ": " + why);
  }
  std::filesystem::rename(part, path, ec);
  if (ec) {
    std::string why = ec.message();
    std::filesystem::remove(part, ec);
    throw Error("download " + mapgate::quoted(url) + ": cannot rename to " + mapgate::quoted(path) +
                ": " + why);
  }
  if (log) {
    curl_off_t bytes = 0;
    curl_easy_getinfo(curl.h, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, " in %.1f s", secs);
    log("downloaded " + url + ": " + megabytes(bytes) + " MB" + buf);
  }
}

}  // namespace mapgate
