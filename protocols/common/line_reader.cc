// LineReader. See line_reader.h. No I/O.
#include "protocols/common/line_reader.h"

#include <string.h>

#include "protocols/common/secret.h"

namespace mailshim::proto {

void LineReader::feed(std::string_view bytes) {
  compact();
  buf_.append(bytes);
}

void LineReader::compact() {
  if (pos_ > 0 && (pos_ >= 4096 || pos_ * 2 >= buf_.size())) {
    // Consumed lines may have carried credentials (AUTH, PASS): zero them,
    // and the tail the erase leaves behind in the buffer's capacity.
    size_t old_size = buf_.size();
    explicit_bzero(buf_.data(), pos_);
    buf_.erase(0, pos_);
    explicit_bzero(buf_.data() + buf_.size(), old_size - buf_.size());
    pos_ = 0;
  }
}

void LineReader::clear() {
  wipe(buf_);
  pos_ = 0;
  skipping_ = false;
}

std::string LineReader::takeRaw(size_t n) {
  size_t avail = buf_.size() - pos_;
  if (n > avail) n = avail;
  std::string out = buf_.substr(pos_, n);
  pos_ += n;
  return out;
}

LineReader::Status LineReader::next(std::string_view& line) {
  for (;;) {
    std::string_view data = std::string_view(buf_).substr(pos_);
    size_t lf = data.find('\n');
    if (skipping_) {
      if (lf == std::string_view::npos) {
        pos_ = buf_.size();  // discard what we have of the over-long line
        return Status::NeedMore;
      }
      pos_ += lf + 1;
      skipping_ = false;
      continue;
    }
    if (lf == std::string_view::npos) {
      // A trailing CR may be the first half of the line end: not counted.
      size_t body = data.size() - (!data.empty() && data.back() == '\r' ? 1 : 0);
      if (body > max_) {
        skipping_ = true;
        pos_ = buf_.size();
        return Status::TooLong;
      }
      return Status::NeedMore;
    }
    size_t len = lf;
    if (len > 0 && data[len - 1] == '\r') --len;
    if (len > max_) {
      pos_ += lf + 1;
      return Status::TooLong;
    }
    line = data.substr(0, len);
    pos_ += lf + 1;
    return Status::Line;
  }
}

}  // namespace mailshim::proto
