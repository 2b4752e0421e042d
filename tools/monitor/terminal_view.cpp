// The ncurses view: a sticky title and column header, the table body (scrollable), and a key
// help line that becomes the filter prompt after `/`. A resize just redraws at the new size.
#include "terminal_view.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <curses.h>

namespace ringbus::monitor {
namespace {

using Clock = std::chrono::steady_clock;

constexpr short kErrorColour = 1;
constexpr short kRecorderColour = 2;
constexpr int kEscape = 27;

// ncurses state for the lifetime of the view; restores the terminal however the view ends.
class Screen {
 public:
  Screen() {
    screen_ = newterm(nullptr, stdout, stdin);
    if (screen_ == nullptr) return;
    set_term(screen_);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(kErrorColour, COLOR_RED, -1);
      init_pair(kRecorderColour, COLOR_CYAN, -1);
    }
  }
  ~Screen() {
    if (screen_ == nullptr) return;
    endwin();
    delscreen(screen_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
  bool ok() const { return screen_ != nullptr; }

 private:
  SCREEN* screen_ = nullptr;
};

struct State {
  TableOptions options;
  bool editing = false;       // typing a filter after `/`
  std::string filter_before;  // restored by Escape
  std::size_t scroll = 0;     // first body line shown
};

attr_t attributes(Line::Kind kind) {
  switch (kind) {
    case Line::Kind::title: return A_BOLD;
    case Line::Kind::header: return A_REVERSE;
    case Line::Kind::topic: return A_BOLD;
    case Line::Kind::error:
      return has_colors() ? static_cast<attr_t>(COLOR_PAIR(kErrorColour)) | A_BOLD : A_BOLD;
    case Line::Kind::recorder:
      return has_colors() ? static_cast<attr_t>(COLOR_PAIR(kRecorderColour)) : A_NORMAL;
    case Line::Kind::reader:
    case Line::Kind::blank: break;
  }
  return A_NORMAL;
}

void put(int row, const std::string& text, attr_t attr, int columns) {
  attrset(attr);
  mvaddnstr(row, 0, text.c_str(), columns);
  if (attr & A_REVERSE) {  // a full-width bar
    for (int x = static_cast<int>(std::min<std::size_t>(text.size(), columns)); x < columns; ++x) {
      mvaddch(row, x, ' ');
    }
  }
  attrset(A_NORMAL);
}

void draw(const BusView& view, State& state) {
  int rows = 0;
  int columns = 0;
  getmaxyx(stdscr, rows, columns);
  erase();
  std::vector<Line> lines = table_lines(view, state.options);
  std::vector<const Line*> body;
  int row = 0;
  for (const Line& line : lines) {
    if ((line.kind == Line::Kind::title || line.kind == Line::Kind::header) && row < rows - 1) {
      put(row++, line.text, attributes(line.kind), columns);
    } else {
      body.push_back(&line);
    }
  }
  const int body_rows = std::max(0, rows - row - 1);
  const std::size_t max_scroll =
      body.size() > static_cast<std::size_t>(body_rows) ? body.size() - body_rows : 0;
  state.scroll = std::min(state.scroll, max_scroll);
  for (int i = 0; i < body_rows && state.scroll + i < body.size(); ++i) {
    const Line& line = *body[state.scroll + i];
    put(row + i, line.text, attributes(line.kind), columns);
  }
  if (rows > 0) {
    std::string help =
        state.editing
            ? "/" + state.options.filter
            : "q quit  s sort (" + std::string(to_string(state.options.sort)) +
                  ")  / filter  arrows scroll" +
                  (max_scroll > 0
                       ? "  [" + std::to_string(state.scroll + 1) + "-" +
                             std::to_string(std::min(body.size(), state.scroll + body_rows)) +
                             " of " + std::to_string(body.size()) + "]"
                       : "");
    put(rows - 1, help, A_REVERSE, columns);
    if (state.editing) {
      curs_set(1);
      move(rows - 1, static_cast<int>(std::min<std::size_t>(help.size(), columns - 1)));
    } else {
      curs_set(0);
    }
  }
  refresh();
}

// Returns false when the key asks to quit.
bool handle_key(int key, State& state) {
  if (state.editing) {
    if (key == '\n' || key == '\r' || key == KEY_ENTER) {
      state.editing = false;
    } else if (key == kEscape) {
      state.options.filter = state.filter_before;
      state.editing = false;
    } else if (key == KEY_BACKSPACE || key == 127 || key == 8) {
      if (!state.options.filter.empty()) state.options.filter.pop_back();
    } else if (key >= 0x20 && key < 0x7f) {
      state.options.filter.push_back(static_cast<char>(key));
    }
    state.scroll = 0;
    return true;
  }
  switch (key) {
    case 'q':
    case 'Q': return false;
    case 's':
    case 'S':
      state.options.sort = next(state.options.sort);
      state.scroll = 0;
      break;
    case '/':
      state.editing = true;
      state.filter_before = state.options.filter;
      break;
    case KEY_UP:
      if (state.scroll > 0) --state.scroll;
      break;
    case KEY_DOWN: ++state.scroll; break;  // draw() clamps
    case KEY_PPAGE: state.scroll -= std::min<std::size_t>(state.scroll, 10); break;
    case KEY_NPAGE: state.scroll += 10; break;
    case KEY_HOME: state.scroll = 0; break;
    default: break;  // KEY_RESIZE and anything else: just redraw
  }
  return true;
}

}  // namespace

bool run_terminal_view(Sampler& sampler, std::chrono::milliseconds interval, TableOptions options,
                       const std::function<void(const BusView&)>& on_sample,
                       const volatile std::sig_atomic_t& stop) {
  Screen screen;
  if (!screen.ok()) {
    std::fputs("ringbus-monitor: cannot use this terminal (is TERM set?)\n", stderr);
    return false;
  }
  State state;
  state.options = std::move(options);
  BusView view = sampler.sample();
  on_sample(view);
  auto next_sample = Clock::now() + interval;
  draw(view, state);
  while (stop == 0) {
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - Clock::now());
    // Wake at least every 200 ms so a stop signal is noticed promptly.
    timeout(static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 200)));
    const int key = getch();
    if (key != ERR && !handle_key(key, state)) break;
    if (Clock::now() >= next_sample) {  // also while keys keep coming
      view = sampler.sample();
      on_sample(view);
      next_sample = Clock::now() + interval;
    }
    draw(view, state);
  }
  return true;
}

}  // namespace ringbus::monitor
