//! The ledger directory's layout: tile paths that may be served, and the
//! cosignatures kept per checkpoint.

use std::path::Path;

use docket_log::ledger::{add_cosignatures, read_cosignatures, Paths};

#[test]
fn only_c2sp_tile_paths_name_a_file() {
    let paths = Paths::new(Path::new("/ledger"));
    for good in ["0/000", "0/x001/234", "1/007.p/17", "0/x001/x002/003.p/255", "2/0"] {
        assert_eq!(paths.tile(good), Some(Path::new("/ledger/tiles/tile").join(good)), "{good}");
    }
    for bad in
        ["", "0", "../0/000", "0/../../etc", "0/000/", "a/000", "0/00a", "0/001.p", "0/001.p/x", "0//001", "/0/001"]
    {
        assert_eq!(paths.tile(bad), None, "{bad:?}");
    }
}

#[test]
fn cosignatures_keep_one_line_per_witness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = Paths::new(dir.path());
    assert_eq!(read_cosignatures(&paths, 7), None);
    add_cosignatures(&paths, 7, &[("w1".into(), "— w1 AAAA".into())]).expect("add");
    add_cosignatures(&paths, 7, &[("w2".into(), "— w2 BBBB\n".into()), ("w1".into(), "— w1 CCCC".into())])
        .expect("add");
    assert_eq!(read_cosignatures(&paths, 7).as_deref(), Some("— w1 CCCC\n— w2 BBBB\n"));
    assert_eq!(read_cosignatures(&paths, 8), None, "kept per checkpoint size");
}
