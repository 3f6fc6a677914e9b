/// The release of xdplb this binary is (`xdplb --version`, `xdplb_build_info`,
/// and the base of the Debian package version `tools/package` writes).
public enum XdplbVersion {
    /// Semantic version of the release.
    public static let string = "0.12.0"
}
