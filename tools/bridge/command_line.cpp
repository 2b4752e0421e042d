// The bridge's flags: registered with CLI11 from the option table and applied through it, so a
// flag and its TOML key share one parser.
#include "command_line.hpp"

#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bridge_options.hpp"

namespace ringbus::bridge {

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
  CLI::App app{
      "ringbus-bridge: records ringbus topics to disk logs and links bridges on other "
      "hosts (see docs/bridge.md)"};
  std::string config_path;
  app.add_option("--config", config_path, "TOML configuration file");
  // One value holder per option, stable in place (CLI11 keeps pointers to them).
  struct Given {
    const BridgeOption* option;
    CLI::Option* flag;
    std::string value;
    std::vector<std::string> values;
  };
  std::deque<Given> given;
  for (const BridgeOption& o : bridge_options()) {
    if (o.flag.empty()) continue;
    Given& g = given.emplace_back(Given{&o, nullptr, {}, {}});
    const std::string name(o.flag);
    const std::string help(o.help);
    if (o.kind == OptionKind::boolean) {
      g.flag = app.add_flag(name, help);
    } else if (o.kind == OptionKind::list) {
      g.flag = app.add_option(name, g.values, help);
    } else {
      g.flag = app.add_option(name, g.value, help);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return CommandLine{{}, app.help()};
  } catch (const CLI::ParseError& e) {
    return Error(Errc::invalid_argument, e.what());
  }

  CommandLine result;
  BridgeConfig& config = result.config;
  if (!config_path.empty()) {
    auto loaded = load_config_file(config_path);
    if (!loaded) return loaded.error();
    config = std::move(*loaded);
  }
  // Flags override the file, in table order. An empty value counts as not given (as `--cpu -1`).
  for (const Given& g : given) {
    const BridgeOption& o = *g.option;
    if (g.flag->count() == 0) continue;
    if (o.kind != OptionKind::list && o.kind != OptionKind::boolean &&
        (g.value.empty() || g.value == o.flag_none)) {
      continue;
    }
    const OptionSource source{"", std::string(o.flag)};
    if (o.kind == OptionKind::list) {
      o.reset(config);
      for (const std::string& v : g.values) {
        if (auto ok = o.apply(config, v, source); !ok) return ok.error();
      }
      continue;
    }
    const std::string value = o.kind == OptionKind::boolean ? std::string(o.flag_value) : g.value;
    if (auto ok = o.apply(config, value, source); !ok) return ok.error();
  }
  if (auto ok = validate_config(config); !ok) return ok.error();
  if (!config.log_dir.empty()) {
    config.log_dir = std::filesystem::absolute(config.log_dir).lexically_normal().string();
    while (config.log_dir.size() > 1 && config.log_dir.back() == '/') config.log_dir.pop_back();
  }
  return result;
}

}  // namespace ringbus::bridge
