using Bridge.Emulators.CloudTasks.Location;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// google.cloud.location.Locations, as Cloud Tasks serves it: every well-formed location exists (queues can be made
/// in any), and a project lists the usual Cloud Tasks regions plus every location its queues are in.
/// </summary>
internal sealed class LocationsService(EmulatorState state) : Locations.LocationsBase
{
    private static readonly string[] Regions =
    [
        "asia-east1", "asia-northeast1", "asia-south1", "asia-southeast1", "australia-southeast1", "europe-west1",
        "europe-west2", "europe-west3", "europe-west4", "northamerica-northeast1", "southamerica-east1",
        "us-central1", "us-east1", "us-east4", "us-west1", "us-west2",
    ];

    public override Task<ListLocationsResponse> ListLocations(ListLocationsRequest request, ServerCallContext context)
    {
        var project = ParseProject(request.Name);
        var pageSize = Paging.PageSize(request.PageSize, Paging.MaxQueuePageSize);
        var after = Paging.DecodeToken(request.PageToken);
        var ids = Regions.Concat(state.LocationsInUse(project)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Where(id => string.CompareOrdinal(id, after) > 0)
            .Take(pageSize + 1)
            .ToList();
        var response = new ListLocationsResponse { Locations = { ids.Take(pageSize).Select(id => ToLocation(project, id)) } };
        if (ids.Count > pageSize)
        {
            response.NextPageToken = Paging.EncodeToken(ids[pageSize - 1]);
        }

        return Task.FromResult(response);
    }

    public override Task<Location.Location> GetLocation(GetLocationRequest request, ServerCallContext context)
    {
        var location = QueueRules.ParseLocationName(request.Name, "name");
        return Task.FromResult(ToLocation(location.ProjectId, location.LocationId));
    }

    private static Location.Location ToLocation(string project, string id) => new()
    {
        Name = $"projects/{project}/locations/{id}",
        LocationId = id,
        Labels = { ["cloud.googleapis.com/region"] = id },
    };

    private static string ParseProject(string name)
    {
        const string prefix = "projects/";
        var project = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : string.Empty;
        if (project.Length == 0 || project.Contains('/', StringComparison.Ordinal))
        {
            throw Errors.InvalidArgument("name", $"'{name}' must be 'projects/<project>'.");
        }

        return project;
    }
}
