namespace Bridge.Testing;

public static class RepositoryPaths
{
    /// <summary>The repository root: the folder above the test binaries that holds Bridge.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string OfficialProtosJson => Path.Combine(Root, "tests", "conformance", "node_modules", "@google-cloud", "tasks", "build", "protos", "protos.json");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bridge.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Bridge.sln above {AppContext.BaseDirectory}.");
    }
}
