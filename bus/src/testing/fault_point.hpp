// Named fault points for kill-point and fault-injection tests. Compiled in only when the build
// defines RINGBUS_FAULT_POINTS (test builds; never release packages), where each point costs one
// predictable branch until a test arms it through the environment:
//   RINGBUS_KILL_AT=<name>[:<n>]   SIGKILL the process the n-th time (default 1st) it passes <name>
//   RINGBUS_FAIL_AT=<name>[:<n>]   fault_point_fails(<name>) is true the n-th time it is asked
// In-process tests may instead install a hook that runs at every kill point (to interleave two
// members deterministically at a named step).
#pragma once

namespace ringbus::detail {

#ifdef RINGBUS_FAULT_POINTS
// Kills the process (SIGKILL, no cleanup) if RINGBUS_KILL_AT names this point and count.
void kill_point(const char* name) noexcept;
// True if RINGBUS_FAIL_AT names this point and count: the caller then fails as if the real
// operation had (e.g. fdatasync returning EIO).
bool fault_point_fails(const char* name) noexcept;
// Reads the environment again (a forked test child sets it after the parent parsed it).
void reload_fault_points() noexcept;
using FaultHook = void (*)(const char* name, void* arg);
// Calls `hook(name, arg)` at every kill point of this process; nullptr removes it.
void set_fault_hook(FaultHook hook, void* arg) noexcept;
inline constexpr bool kFaultPoints = true;
#else
inline constexpr bool kFaultPoints = false;  // tests that need them skip themselves
inline void kill_point(const char*) noexcept {}
inline bool fault_point_fails(const char*) noexcept { return false; }
inline void reload_fault_points() noexcept {}
using FaultHook = void (*)(const char* name, void* arg);
inline void set_fault_hook(FaultHook, void*) noexcept {}
#endif

}  // namespace ringbus::detail
