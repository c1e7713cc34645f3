"""Writing results: masks and JSON, always atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager

import SimpleITK as sitk

from ..errors import InputError, as_path, itk_reason
from ._filechecks import NIFTI_SUFFIXES, _check_complete, _nifti_header, check_itk_path

# Below this many free bytes in its folder, a failed write is said to be a full disk.
DISK_FULL_BYTES = 1 << 20


def check_writable(path, name=None):
    """Refuse, in one sentence, a file path that names a folder (or ends in one) or lies
    under a file; returns the nearest folder on its way that exists.

    ``name``: how the path is named in the sentence (e.g. ``"--json out.json"``).
    """
    path = os.fspath(path)
    name = name or path
    check_itk_path(path)  # masks are written by ITK, which aborts on a name not in UTF-8
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise InputError(f"cannot write {name}: it is a folder; give a file name.")
    if _through_special_folders(path) or os.path.exists(path) and not os.path.isfile(path):
        # Results are renamed into place: run as root, '--json /dev/full' had replaced the
        # device with a JSON file (exit 0), and a pipe's reader got nothing.
        raise InputError(f"cannot write {name}: it is not a regular file (a device, pipe "
                         f"or socket); give a file name.")
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):  # the folders still to be created
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        # makedirs would say "File exists", of a folder the user never named.
        raise InputError(f"cannot write {name}: {existing} is a file, not a folder.")
    return existing


def _through_special_folders(path, max_links=40):
    """Whether ``path``, or a link on the way to its file, lies in /proc.

    '--json /dev/stdout >> log.txt' resolves, through /proc/self/fd/1, to log.txt,
    which the rename then replaced: the earlier lines of the log were lost. (Device
    files are refused by their type; a file on the RAM disk /dev/shm is a file.)
    """
    p = os.path.abspath(path)
    for _ in range(max_links):
        # The folder resolved ('//proc/...', or a link to /proc on the way), then the file's
        # own link, if it is one, followed.
        folder = os.path.realpath(os.path.dirname(p))
        if folder == "/proc" or folder.startswith("/proc/"):
            return True
        p = os.path.join(folder, os.path.basename(p))
        if not os.path.islink(p):
            return False
        p = os.path.abspath(os.path.join(folder, os.readlink(p)))
    return False


def _atomic_target(path):
    path = os.fspath(path)
    check_writable(path)
    if os.path.islink(path):
        # The file the link names is replaced, and the link kept (renamed over, the link
        # itself had become the file, the one it named left unchanged).
        path = os.path.realpath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return path, folder


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path, suffix=""):
    """Yield a temporary path beside ``path``; it replaces ``path`` only when complete.

    A run killed half-way leaves the previous file (or none), never half a
    file; the temporary file is removed on any error. (:func:`all_or_none`
    for one file, its temporary name ending in ``suffix``.)

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_file(p, ".txt") as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
    ('done', ['a.txt'])
    """
    with all_or_none([path], suffixes=[suffix]) as (tmp,):
        yield tmp


@contextmanager
def all_or_none(paths, suffixes=None):
    """Yield a temporary path beside each of ``paths``; they replace ``paths`` only when
    the block completes, else all are removed.

    For commands that write several files: a failure writing the second must not
    leave the first, from this run, beside the previous run's second. A temporary
    name ends in its ``suffixes`` entry, by default ``-`` and the file's own name
    (so a writer that goes by suffix writes the same format). A writer's OSError
    or RuntimeError (ITK's) becomes an InputError naming the file and the reason
    in one sentence; an InputError naming a temporary file names the file meant.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> a, b = os.path.join(d, "a.txt"), os.path.join(d, "b.txt")
    >>> try:
    ...     with all_or_none([a, b]) as (ta, tb):
    ...         _ = open(ta, "w").write("a")
    ...         raise OSError(28, "No space left on device", tb)
    ... except InputError as exc:
    ...     print(str(exc).replace(d, "D"))
    cannot write D/b.txt: No space left on device.
    >>> os.listdir(d)
    []
    """
    paths = [os.fspath(p) for p in paths]
    suffixes = suffixes or ["-" + os.path.basename(p) for p in paths]
    staged = []
    try:
        for path, suffix in zip(paths, suffixes):
            path, folder = _atomic_target(path)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
            os.close(fd)
            staged.append((tmp, path))
    except OSError as exc:  # a file where a folder should be, no permission, disk full
        for tmp, _ in staged:
            os.unlink(tmp)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}.") from None
    try:
        yield [tmp for tmp, _ in staged]
        for tmp, path in staged:
            # mkstemp creates owner-only files; results are ordinary files, so give
            # them the permissions any other new file would get.
            os.chmod(tmp, 0o666 & ~_current_umask())
            os.replace(tmp, path)
    except BaseException as exc:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(exc, InputError):
            # Said of a temporary file (a writer's own check): the user's file is meant.
            exc.args = tuple(_own_names(a, staged) if isinstance(a, str) else a
                             for a in exc.args)
            raise
        if isinstance(exc, (NotImplementedError, RecursionError)):
            raise  # RuntimeErrors of the code, not of the disk
        temps = {tmp for tmp, _ in staged}
        if isinstance(exc, OSError) and exc.filename and exc.filename not in temps:
            # Another file the writer needed (a source slice of a DICOM SEG, gone): its own.
            raise InputError(f"cannot use {exc.filename} ({exc.strerror or exc}) while "
                             f"writing {staged[0][1]}.") from None
        if isinstance(exc, (OSError, RuntimeError)):
            # A full disk, a lost share: one sentence, not the library's lines (pydicom's
            # nested traceback text, a dozen lines of ITK's NRRD errors).
            raise _write_failed(exc, staged) from None
        raise


def _own_names(text, staged):
    for tmp, path in staged:
        text = text.replace(tmp, path)
    return text


def _write_failed(exc, staged):
    """The InputError saying that writing one of ``staged``'s files failed, and why."""
    text = str(exc)
    path = next((p for t, p in staged if t in text or t == getattr(exc, "filename", None)),
                staged[0][1])
    try:
        full = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < DISK_FULL_BYTES
    except OSError:
        full = False
    if full:
        reason = "no space is left on its disk"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    elif isinstance(exc, RuntimeError):
        reason = itk_reason(exc)
    else:
        reason = (text.strip().splitlines() or [type(exc).__name__])[0]
    return InputError(f"cannot write {path}: {_own_names(reason, staged).rstrip('.')}.")


def check_written(path):
    """Refuse an image file a writer left incomplete without raising: ITK's NIfTI
    writer prints a short write ('NWAD: wrote only 40608 of 13565952 bytes', a full
    disk) to the terminal and returns as if done."""
    header = None
    if path.lower().endswith(NIFTI_SUFFIXES):
        header = _nifti_header(path) if os.path.getsize(path) else None
        if header is None:
            raise InputError(f"cannot write {path}: the file came out empty or unreadable "
                             f"(is its disk full?).")
    try:
        _check_complete(path, header)
    except InputError:
        raise InputError(f"cannot write {path}: the file came out incomplete (is its disk "
                         f"full?).") from None


def write_json_atomic(data, path):
    """Write ``data`` as JSON so that ``path`` is either complete or absent."""
    with atomic_file(path, ".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")


def write_mask(mask, path, *, segment_name=None):
    """Write a mask or label map atomically; the format follows the suffix.

    Parameters
    ----------
    mask : SimpleITK.Image
        Written with its own geometry, compressed.
    path : str or os.PathLike
        ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, or ``.seg.nrrd`` (a 3D
        Slicer segmentation with one named segment).
    segment_name : str, optional
        Segment name for ``.seg.nrrd`` (default: the file name without suffix).
    """
    from ._masks import Mask

    if isinstance(mask, Mask):  # (a Scan has an .image too: a scan is no mask)
        mask = mask.image
    if not isinstance(mask, sitk.Image):
        raise InputError(f"write_mask needs a SimpleITK image or a Mask, not "
                         f"{type(mask).__name__}.")
    from ..volumetry import check_mask  # (io is below volumetry)

    # A probability map or a scan had been written as a "mask", refused only when read back.
    check_mask(mask, "mask to write")
    _write_image_file(mask, path, segment_name)


def write_scan(image, path):
    """Write a scan (any pixel values) atomically as NIfTI, NRRD or MHA, compressed: the
    writer of :func:`write_mask` without its check that the image is a mask."""
    if not isinstance(image, sitk.Image):
        raise InputError(f"write_scan needs a SimpleITK image, not {type(image).__name__}.")
    if os.fspath(path).lower().endswith(".seg.nrrd"):
        raise InputError("a scan is no segmentation: write it as .nii.gz, .nrrd or .mha.")
    _write_image_file(image, path, None)


def _write_image_file(image, path, segment_name):
    """Write ``image`` by the suffix of ``path`` (.seg.nrrd: one named segment)."""
    name = os.path.basename(as_path(path, "write_mask writes a file"))
    lower = name.lower()
    if lower.endswith(".seg.nrrd"):
        from ._segfiles import write_seg_nrrd

        write_seg_nrrd({segment_name or name[: -len(".seg.nrrd")]: image}, path)
        return
    suffix = ".nii.gz" if lower.endswith(".nii.gz") else os.path.splitext(lower)[1]
    if suffix not in (".nii.gz", ".nii", ".nrrd", ".mha"):
        raise InputError(
            f"cannot write a mask as {name}; use .nii.gz, .nrrd, .seg.nrrd or .mha."
        )
    from ._images import itk_warnings_hidden

    with atomic_file(path, suffix) as tmp:
        # What the C libraries print of a failure ('** ERROR: NWAD: wrote only ...') is
        # dropped: the error says it in one sentence.
        with itk_warnings_hidden():
            sitk.WriteImage(image, tmp, useCompression=True)
            check_written(tmp)
