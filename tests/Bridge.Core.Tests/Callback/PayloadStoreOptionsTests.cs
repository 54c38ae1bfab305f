using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Core.Tests.Callback;

/// <summary>Start-up validation of Bridge:Outcomes:PayloadStore: each mistake named by its key, no secret echoed.</summary>
public sealed class PayloadStoreOptionsTests
{
    private const string Secret = "AccountKey=c2VjcmV0LWtleQ==";

    private static IReadOnlyList<string> Errors(PayloadStoreOptions store)
    {
        var result = new OutcomeOptionsValidator(new ServiceCollection().BuildServiceProvider()).Validate(null, new OutcomeOptions { PayloadStore = store });
        return result.Failed ? [.. result.Failures!] : [];
    }

    [Fact]
    public void No_store_is_valid() => Assert.Empty(Errors(new PayloadStoreOptions()));

    [Fact]
    public void A_keyless_store_and_a_local_one_are_valid()
    {
        Assert.Empty(Errors(new PayloadStoreOptions { BlobServiceUri = new Uri("https://acct.blob.core.windows.net"), Container = "payloads" }));
        Assert.Empty(Errors(new PayloadStoreOptions { ConnectionString = "UseDevelopmentStorage=true", Container = "bridge-payloads-1" }));
    }

    public static TheoryData<string?, string?, string?, string> Mistakes() => new()
    {
        { null, null, "payloads", "needs Bridge:Outcomes:PayloadStore:BlobServiceUri" },
        { "https://acct.blob.core.windows.net", Secret, "payloads", "sets both BlobServiceUri and ConnectionString" },
        { "http://acct.blob.core.windows.net", null, "payloads", "BlobServiceUri must be an absolute https URL" },
        { "https://acct.blob.core.windows.net/?sv=2024&sig=" + Secret, null, "payloads", "carries a query or credentials" },
        { "https://acct.blob.core.windows.net", null, null, "PayloadStore:Container (the blob container payloads go to) is required" },
        { null, Secret, "Payloads", "is not a container name" },
        { null, Secret, "ab", "is not a container name" },
        { null, Secret, "pay--loads", "is not a container name" },
        { null, Secret, "payloads-", "is not a container name" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void Each_mistake_is_refused_by_name_without_echoing_a_secret(string? uri, string? connectionString, string? container, string expected)
    {
        var errors = Errors(new PayloadStoreOptions { BlobServiceUri = uri is null ? null : new Uri(uri), ConnectionString = connectionString, Container = container });

        var error = Assert.Single(errors);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0", error, StringComparison.Ordinal);
    }
}
