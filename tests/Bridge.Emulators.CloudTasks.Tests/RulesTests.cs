using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>The emulator's rules that need no state: plain functions, checked directly.</summary>
public sealed class RulesTests
{
    private static readonly RetryConfig Retry = new() { MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(300)), MaxDoublings = 3, MaxAttempts = 10 };

    [Fact]
    public void Backoff_doubles_max_doublings_times_then_grows_linearly_up_to_max_backoff()
    {
        Assert.Equal(new[] { 10, 20, 40, 80, 160, 240, 300, 300 }, Enumerable.Range(1, 8).Select(n => (int)Backoff.Delay(Retry, n).TotalSeconds));
    }

    [Theory]
    [InlineData(500, null, 10)]
    [InlineData(404, null, 10)]
    [InlineData(429, null, 20)]
    [InlineData(503, null, 20)]
    [InlineData(429, 60, 60)]
    [InlineData(500, 60, 10)] // Retry-After counts only on overload answers
    public void The_next_delay_doubles_on_overload_and_honours_retry_after(int status, int? retryAfterSeconds, int expectedSeconds)
    {
        var retryAfter = retryAfterSeconds is { } s ? TimeSpan.FromSeconds(s) : (TimeSpan?)null;
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), AttemptRules.NextDelay(Retry, 1, status, retryAfter));
    }

    [Theory]
    [InlineData(200, Google.Rpc.Code.Ok)]
    [InlineData(404, Google.Rpc.Code.NotFound)]
    [InlineData(418, Google.Rpc.Code.FailedPrecondition)]
    [InlineData(429, Google.Rpc.Code.ResourceExhausted)]
    [InlineData(502, Google.Rpc.Code.Internal)]
    [InlineData(503, Google.Rpc.Code.Unavailable)]
    public void Http_statuses_map_to_the_attempts_response_status(int http, Google.Rpc.Code code) =>
        Assert.Equal((int)code, AttemptRules.StatusFor(http).Code);

    [Theory]
    [InlineData(200, true)]
    [InlineData(404, true)]
    [InlineData(500, false)]
    [InlineData(503, false)]
    [InlineData(null, false)]
    public void Only_answers_other_than_500_and_503_count_as_executions(int? status, bool counts) =>
        Assert.Equal(counts, AttemptRules.IsExecution(status));

    [Fact]
    public void Exhaustion_needs_every_configured_limit()
    {
        var both = new RetryConfig { MaxAttempts = 3, MaxRetryDuration = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)) };
        Assert.False(Backoff.IsExhausted(both, 3, TimeSpan.FromSeconds(30)));
        Assert.True(Backoff.IsExhausted(both, 3, TimeSpan.FromMinutes(1)));
        Assert.False(Backoff.IsExhausted(new RetryConfig { MaxAttempts = -1 }, 1000, TimeSpan.FromDays(1)));
        Assert.True(Backoff.IsExhausted(new RetryConfig { MaxAttempts = 2, MaxRetryDuration = new Duration() }, 2, TimeSpan.Zero));
    }

    [Theory]
    [InlineData("user:a@example.com", true)]
    [InlineData("serviceAccount:x@p.iam.gserviceaccount.com", true)]
    [InlineData("allUsers", true)]
    [InlineData("user:", false)]
    [InlineData("a@example.com", false)]
    public void Iam_members_must_have_a_known_type(string member, bool valid) => Assert.Equal(valid, IamRules.IsValidMember(member));

    [Fact]
    public void A_replaced_policy_keeps_audit_configs_outside_the_mask_and_gets_a_new_etag()
    {
        var current = new Policy { AuditConfigs = { new AuditConfig { Service = "cloudtasks.googleapis.com" } } };
        var requested = new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.viewer", Members = { "user:a@example.com" } } } };

        var masked = IamRules.Replace(current, requested, new FieldMask { Paths = { "bindings" } });
        var unmasked = IamRules.Replace(current, requested, null);

        Assert.Single(masked.AuditConfigs);
        Assert.Empty(unmasked.AuditConfigs);
        Assert.Equal(1, masked.Version);
        Assert.NotEqual(IamRules.Empty().Etag, masked.Etag);
        Assert.Equal(IamRules.ComputeEtag(masked), masked.Etag);
    }

    [Fact]
    public void Conditional_bindings_make_a_version_3_policy()
    {
        var requested = new Policy { Bindings = { new Binding { Role = "roles/x", Members = { "user:a@b.c" }, Condition = new Google.Type.Expr { Expression = "true" } } } };
        Assert.Equal(3, IamRules.Replace(IamRules.Empty(), requested, null).Version);
    }

    [Fact]
    public void Test_permissions_grants_the_known_ones_once_and_refuses_wildcards()
    {
        Assert.Equal(["cloudtasks.tasks.create"], IamRules.Granted(["cloudtasks.tasks.create", "storage.objects.get", "cloudtasks.tasks.create"]));
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => IamRules.ValidatePermissions(["cloudtasks.*"])).StatusCode);
    }

    [Fact]
    public void Page_tokens_round_trip_and_foreign_ones_are_invalid()
    {
        Assert.Equal("projects/p/locations/l/queues/q", Paging.DecodeToken(Paging.EncodeToken("projects/p/locations/l/queues/q")));
        Assert.Equal(string.Empty, Paging.DecodeToken(string.Empty));
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => Paging.DecodeToken("not base64!")).StatusCode);
        Assert.Equal(Paging.DefaultPageSize, Paging.PageSize(0, Paging.MaxQueuePageSize));
        Assert.Equal(Paging.MaxTaskPageSize, Paging.PageSize(5000, Paging.MaxTaskPageSize));
        Assert.Throws<RpcException>(() => Paging.PageSize(-1, 10));
    }

    [Theory]
    [InlineData("state: PAUSED", Queue.Types.State.Paused)]
    [InlineData("state=running", Queue.Types.State.Running)]
    [InlineData("", null)]
    public void The_queue_filter_selects_a_state(string filter, Queue.Types.State? expected) => Assert.Equal(expected, QueueRules.ParseStateFilter(filter));

    [Fact]
    public void Other_queue_filters_are_invalid() =>
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => QueueRules.ParseStateFilter("name: x")).StatusCode);

    [Fact]
    public void Cmek_names_and_keys_belong_to_one_location()
    {
        Assert.Equal("projects/p/locations/l", CmekRules.ParseConfigName("projects/p/locations/l/cmekConfig", "name"));
        Assert.Throws<RpcException>(() => CmekRules.ParseConfigName("projects/p/locations/l", "name"));
        CmekRules.ValidateKey("projects/p/locations/l", "projects/p/locations/l/keyRings/r/cryptoKeys/k", "kms_key");
        CmekRules.ValidateKey("projects/p/locations/l", string.Empty, "kms_key");
        Assert.Throws<RpcException>(() => CmekRules.ValidateKey("projects/p/locations/l", "projects/p/locations/m/keyRings/r/cryptoKeys/k", "kms_key"));
    }

    [Fact]
    public void Generated_task_ids_have_19_digits() =>
        Assert.All(Enumerable.Range(0, 50).Select(_ => TaskRules.NewTaskId()), id => Assert.Matches("^[1-9][0-9]{18}$", id));

    public static TheoryData<string, UriOverride?, string> UriOverrideCases() => new()
    {
        { "http://h.example:8080/a%20b?x=%2F", null, "http://h.example:8080/a%20b?x=%2F" },
        { "http://h.example", null, "http://h.example" },
        { "http://h.example:8080/p", new UriOverride { Scheme = UriOverride.Types.Scheme.Https }, "https://h.example:8080/p" },
        { "http://h.example/p", new UriOverride { Scheme = UriOverride.Types.Scheme.Https }, "https://h.example/p" },
        { "http://h.example:8080/p", new UriOverride { Port = 0 }, "http://h.example/p" },
        { "http://h.example/p?q=1", new UriOverride { Host = "o.example", Port = 9000, PathOverride = new PathOverride { Path = "/new" }, QueryOverride = new QueryOverride { QueryParams = "z=2" } }, "http://o.example:9000/new?z=2" },
        { "http://h.example/p?q=1", new UriOverride { PathOverride = new PathOverride { Path = string.Empty }, QueryOverride = new QueryOverride { QueryParams = string.Empty } }, "http://h.example/" },
        { "http://h.example/p", new UriOverride { UriOverrideEnforceMode = UriOverride.Types.UriOverrideEnforceMode.IfNotExists, Host = "o.example", Port = 9000, PathOverride = new PathOverride { Path = "/new" }, QueryOverride = new QueryOverride { QueryParams = "z=2" } }, "http://h.example:9000/p?z=2" },
        { "http://h.example:81/", new UriOverride { UriOverrideEnforceMode = UriOverride.Types.UriOverrideEnforceMode.IfNotExists, Port = 9000, PathOverride = new PathOverride { Path = "/new" } }, "http://h.example:81/new" },
        { string.Empty, new UriOverride { Host = "o.example", Scheme = UriOverride.Types.Scheme.Http }, "http://o.example/" },
    };

    [Theory]
    [MemberData(nameof(UriOverrideCases))]
    public void Uri_overrides_apply_part_by_part(string url, UriOverride? uriOverride, string expected) =>
        Assert.Equal(expected, UriOverrides.Apply(url, uriOverride));
}
