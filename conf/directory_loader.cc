// Directory loader. See directory_loader.h. Reads one file; no sockets.
#include "conf/directory_loader.h"

#include <fstream>
#include <map>

#include "protocols/common/text.h"

namespace mailshim::conf {
namespace {

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

proto::DirectoryConstSharedPtr loadDirectory(const DirectorySettings& settings, std::vector<std::string>& warnings) {
  std::map<std::string, std::string> names;
  if (!settings.file.empty()) {
    std::ifstream in(settings.file);
    if (!in) warnings.push_back(settings.file + ": cannot open directory file");
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty() || line[0] == '#') continue;
      auto tab = line.find('\t');
      std::string addr = tab == std::string::npos ? std::string() : trim(line.substr(0, tab));
      std::string name = tab == std::string::npos ? std::string() : trim(line.substr(tab + 1));
      if (addr.empty() || addr.find('@') == std::string::npos || name.empty() || name.size() > 200 ||
          !proto::isLineSafe(name)) {
        warnings.push_back(settings.file + ":" + std::to_string(lineno) +
                           ": expected 'address<TAB>display name', line skipped");
        continue;
      }
      names[lower(addr)] = name;
    }
  }
  for (const auto& [addr, name] : settings.names) names[lower(addr)] = name;
  return std::make_shared<const proto::Directory>(std::move(names));
}

}  // namespace mailshim::conf
