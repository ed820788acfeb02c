// Builds the display-name Directory (smtp.display_name) from the config:
// inline [directory.names] plus a TSV file (address<TAB>display name, '#'
// comments), e.g. exported from iRedMail's vmail.mailbox. Bad lines are
// reported and skipped.
//
// Reads one file. No sockets.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"
#include "protocols/common/directory.h"

namespace mailshim::conf {

proto::DirectoryConstSharedPtr loadDirectory(const DirectorySettings& settings, std::vector<std::string>& warnings);

}  // namespace mailshim::conf
