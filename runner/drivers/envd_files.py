"""The envd agent's file operations (fs.* requests): entries as the protocol describes them,
reads and writes that only ever touch regular files, and inotify watches through ctypes."""

import base64
import errno
import os
import selectors
import stat

import envd_kernel
from envd_io import OpError, drain, event

HOME = envd_kernel.agent_home()
MAX_READ_BYTES = 1 << 20
MAX_LIST_ENTRIES = 10000


_names = {}


def owner_name(uid, lookup):
    """The SDK's user is "user"; other ids by name where the sandbox's files know them."""
    if uid == os.getuid():
        return "user"
    if (lookup, uid) not in _names:
        try:
            import grp
            import pwd
            getter = pwd.getpwuid if lookup == "pwd" else grp.getgrgid
            _names[lookup, uid] = getter(uid)[0]
        except (KeyError, ImportError):
            _names[lookup, uid] = str(uid)
    return _names[lookup, uid]


def resolve(path):
    if not isinstance(path, str) or not path or "\0" in path:
        raise OpError("invalid_argument", "path must be a non-empty string")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    return os.path.normpath(os.path.join(HOME, path))


def kind_of(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def entry(path, st=None):
    st = st or os.lstat(path)
    kind, target = kind_of(st.st_mode), None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        try:
            kind = kind_of(os.stat(path).st_mode)
        except OSError:
            pass  # dangling: stays "symlink"
    return {"name": os.path.basename(path) or path, "type": kind, "path": path,
            "size": st.st_size, "mode": stat.S_IMODE(st.st_mode),
            "permissions": stat.filemode(st.st_mode)[1:], "owner": owner_name(st.st_uid, "pwd"),
            "group": owner_name(st.st_gid, "grp"), "modified_time": st.st_mtime,
            "symlink_target": target}


def fs_list(path, depth):
    if not os.path.isdir(path):
        os.lstat(path)  # not_found when missing
        raise OpError("invalid_argument", "not a directory: " + path)
    entries = []
    level = [path]
    for _ in range(depth):
        below = []
        for directory in level:
            with os.scandir(directory) as it:
                for item in sorted(it, key=lambda e: e.name):
                    if len(entries) >= MAX_LIST_ENTRIES:
                        raise OpError("resource_exhausted",
                                      "more than %d entries" % MAX_LIST_ENTRIES)
                    entries.append(entry(item.path, item.stat(follow_symlinks=False)))
                    if item.is_dir(follow_symlinks=False):
                        below.append(item.path)
        level = below
    return entries


def open_regular(path, flags):
    """Opens path only if it is a regular file; O_NONBLOCK so a FIFO can never block us."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OpError("invalid_argument", "not a regular file: " + path)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in between
        os.close(fd)
        raise OpError("invalid_argument", "not a regular file: " + path)
    return fd


def fs_read(path, offset, length):
    if os.path.isdir(path):
        raise OpError("invalid_argument", "a directory: " + path)
    fd = open_regular(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(length, MAX_READ_BYTES), offset)
    finally:
        os.close(fd)
    return {"data": base64.b64encode(data).decode(), "size": size,
            "eof": offset + len(data) >= size}


def fs_write(path, data, truncate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = open_regular(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return entry(path)


def fs_remove(path):
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return os.unlink(path)
    import shutil
    try:
        return shutil.rmtree(path)
    except RecursionError:
        pass
    except OSError as e:
        if e.errno not in (errno.EMFILE, errno.ENFILE, errno.ENAMETOOLONG):
            raise
    _remove_deep_tree(path)  # deeper than rmtree's one fd (or frame) per level allows


def _remove_deep_tree(path):
    """Removes a tree of any depth holding one directory fd at a time: down into the first
    subdirectory of each level, unlinking the files on the way; up through ".." once a level is
    empty, removing it by the name kept for it. Links are never followed on the way down."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags)
    names = []  # the directories below path that fd is in, outermost first
    try:
        while True:
            below = None
            with os.scandir(fd) as it:
                for item in it:
                    if item.is_dir(follow_symlinks=False):
                        below = item.name
                        break
                    os.unlink(item.name, dir_fd=fd)
            if below is not None:
                child = os.open(below, flags, dir_fd=fd)
                os.close(fd)
                fd = child
                names.append(below)
                continue
            if not names:
                break
            parent = os.open("..", flags & ~os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def fs_move(source, destination):
    os.lstat(source)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        import shutil
        shutil.move(source, destination)
    return entry(destination)


class Watcher:
    """inotify through ctypes: watch ids over watch descriptors, recursive by walking."""
    MASKS = ((0x100 | 0x80, "create"), (0x2, "write"), (0x200 | 0x400, "remove"),
             (0x40 | 0x800, "rename"), (0x4, "chmod"))  # IN_CREATE|IN_MOVED_TO, IN_MODIFY, ...
    WATCH_MASK = 0x100 | 0x80 | 0x2 | 0x200 | 0x40 | 0x4
    IN_ISDIR, IN_IGNORED, IN_Q_OVERFLOW = 0x40000000, 0x8000, 0x4000

    def __init__(self, loop):
        import ctypes
        import struct
        self.struct = struct
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.ctypes = ctypes
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            number = ctypes.get_errno()
            if number in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
                # A limit (the sandbox's inotify instances or fds), not a missing feature.
                raise OpError("resource_exhausted",
                              "inotify: %s; close some watches or files" % os.strerror(number))
            raise OpError("unimplemented", "inotify: " + os.strerror(number))
        self.loop = loop
        self.by_wd = {}  # wd -> {watch_id: relative dir}
        self.watches = {}  # watch_id -> (root, recursive, set of wd)
        self.next_id = 0
        loop.watch(self.fd, selectors.EVENT_READ, self.on_events)

    def add_dir(self, watch_id, directory):
        root, recursive, wds = self.watches[watch_id]
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(directory), self.WATCH_MASK)
        if wd < 0:
            number = self.ctypes.get_errno()
            if number == errno.ENOSPC:  # not the disk: the inotify watches are used up
                raise OpError("resource_exhausted",
                              "inotify: no more directories can be watched (%s); stop some "
                              "watches" % directory)
            raise OSError(number, os.strerror(number), directory)
        wds.add(wd)
        relative = os.path.relpath(directory, root)
        self.by_wd.setdefault(wd, {})[watch_id] = "" if relative == "." else relative

    def add_tree(self, watch_id, top):
        self.add_dir(watch_id, top)
        if self.watches[watch_id][1]:
            for directory, subdirs, _ in os.walk(top):
                for name in subdirs:
                    try:
                        self.add_dir(watch_id, os.path.join(directory, name))
                    except OSError:
                        pass  # gone already

    def start(self, path, recursive):
        if not os.path.isdir(path):
            os.lstat(path)
            raise OpError("invalid_argument", "not a directory: " + path)
        self.next_id += 1
        watch_id = "w%d" % self.next_id
        self.watches[watch_id] = (path, recursive, set())
        try:
            self.add_tree(watch_id, path)
        except BaseException:
            self.stop(watch_id)
            raise
        return watch_id

    def stop(self, watch_id):
        _, _, wds = self.watches.pop(watch_id)
        for wd in wds:
            users = self.by_wd.get(wd, {})
            users.pop(watch_id, None)
            if not users:
                self.by_wd.pop(wd, None)
                self.libc.inotify_rm_watch(self.fd, wd)

    def on_events(self, mask):
        buffer = b"".join(drain(self.fd)[0])
        offset = 0
        while offset + 16 <= len(buffer):
            wd, bits, _, size = self.struct.unpack_from("iIII", buffer, offset)
            name = buffer[offset + 16:offset + 16 + size].rstrip(b"\0").decode(errors="replace")
            offset += 16 + size
            if bits & self.IN_IGNORED:
                for watch_id in self.by_wd.pop(wd, {}):
                    self.watches[watch_id][2].discard(wd)
                continue
            for watch_id, relative in list(self.by_wd.get(wd, {}).items()):
                path = os.path.join(relative, name) if relative else name
                for flags, kind in self.MASKS:
                    if bits & flags and name:
                        event("w:" + watch_id, {"type": kind, "name": path})
                root, recursive, _ = self.watches[watch_id]
                if recursive and bits & self.IN_ISDIR and bits & (0x100 | 0x80):
                    try:
                        self.add_tree(watch_id, os.path.join(root, path))
                    except (OSError, OpError):
                        pass  # gone already, or no watches left: its events are not seen
