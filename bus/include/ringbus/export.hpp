// RINGBUS_API marks what the library exports. It is compiled with hidden symbols
// (-fvisibility=hidden), so a shared libringbus exports the public API and nothing else of its
// internals; every class and function a user calls carries the mark (scripts/check-package.sh
// links a program against such a build).
#pragma once

#define RINGBUS_API [[gnu::visibility("default")]]
