"""The menu bar: File, View, Actions, Help, listing the window's commands (the palette's list)."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

MENUS = ("File", "View", "Actions", "Help")


class MenuBar(QMenuBar):
    """Built from `window.commands` each time a menu opens, so a command added later (by the
    actions, a new tab) is listed, and the menus and the palette cannot disagree.

    A command's key is shown beside it, not bound again: the window's shortcut already
    runs it, and a second binding of the same key would make both ambiguous.
    """

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.window_ = window
        self.menus: dict[str, QMenu] = {}
        for title in MENUS:
            menu = self.addMenu(f"&{title}")
            menu.setObjectName(f"menu{title}")
            menu.aboutToShow.connect(lambda m=menu, t=title: self._fill(m, t))
            self.menus[title] = menu
            self._fill(menu, title)

    def _fill(self, menu: QMenu, title: str) -> None:
        menu.clear()
        last_group: str | None = ""  # "": nothing listed yet
        for command in self.window_.commands:
            if self._menu_of(command) != title:
                continue
            # "Timeline: last hour", "Timeline: last day": a run with one prefix is set apart.
            group = command.name.split(":", 1)[0] if ":" in command.name else None
            if last_group != "" and (group != last_group or command.name == "Quit"):
                menu.addSeparator()
            last_group = group
            text = command.name.replace("&", "&&")
            action = menu.addAction(f"{text}\t{command.shortcut}" if command.shortcut else text)
            action.setData(command.name)
            action.triggered.connect(lambda _=False, run=command.run: run())

    @staticmethod
    def _menu_of(command) -> str:
        menu = getattr(command, "menu", "Actions")
        return menu if menu in MENUS else "Actions"

    def command_names(self, title: str | None = None) -> list[str]:
        """The commands listed (in one menu, or in all), as the palette names them."""
        names = []
        for name, menu in self.menus.items():
            if title is not None and name != title:
                continue
            self._fill(menu, name)
            names += [a.data() for a in menu.actions() if not a.isSeparator()]
        return names
