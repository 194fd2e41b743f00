from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class GetForecastLocation1(TypedDict):
    city: str
    country: NotRequired[str]
    """minLength: 2
    maxLength: 2
    """


class GetForecastLocation2(TypedDict):
    lat: float
    """minimum: -90
    maximum: 90
    """
    lon: float
    """minimum: -180
    maximum: 180
    """


class GetForecastOutputDaysItem(TypedDict):
    date: str
    """format: date"""
    min: float
    max: float
    summary: NotRequired[str]


class GetForecastOutput(TypedDict):
    days: list[GetForecastOutputDaysItem]


async def external_get_forecast(
    *,
    location: GetForecastLocation1 | GetForecastLocation2,
    days: int = 3,
    units: Literal["metric", "imperial"] = "metric",
) -> GetForecastOutput:
    """Get the weather forecast for a location.

    Args:
        days:
            minimum: 1
            maximum: 16
    """
