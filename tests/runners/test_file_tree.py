"""``runners.file_tree.files_under``: the files Hydra and the imports reach, each real folder once."""

from runners.file_tree import files_under


def test_files_under_enters_links_walks_each_folder_once_and_skips_caches(tmp_path):
    real = tmp_path / "elsewhere" / "group"
    real.mkdir(parents=True)
    (real / "a.yaml").write_text("x: 1\n")
    root = tmp_path / "conf"
    (root / "__pycache__").mkdir(parents=True)
    (root / "__pycache__" / "c.yaml").write_text("x: 1\n")
    (root / "b.yaml").write_text("x: 1\n")
    (root / "notes.txt").write_text("not a config\n")
    (root / "group").symlink_to(real, target_is_directory=True)
    (root / "linked_again").symlink_to(real, target_is_directory=True)  # the same folder: once, first in order
    (root / "loop").symlink_to(root, target_is_directory=True)  # a link back up: not walked again
    found = [p.relative_to(root).as_posix() for p in files_under(root, (".yaml",))]
    assert found == ["b.yaml", "group/a.yaml"]
